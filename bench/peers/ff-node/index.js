// The shop's checkout as a Node.js HTTP function: the work every contender
// of providers/gcp/benches/functions_framework.rs does, in the same order.
// The framework has parsed the JSON body already (body-parser); the checks
// are the ones serde makes of the Rust contenders' `NewOrder` (types, u32
// quantities) and then the shop's own.
const functions = require('@google-cloud/functions-framework');
const {randomUUID} = require('node:crypto');

function invalid(res, field, message) {
  res.status(400).json({error: message, field});
}

functions.http('checkout', (req, res) => {
  // An HTTP function gets every path; the Rust contenders route.
  if (req.path !== '/orders') {
    return res.status(404).json({error: `no route for ${req.path}`});
  }
  if (req.method !== 'POST') {
    return res.set('allow', 'POST').status(405).json({error: 'POST only'});
  }
  const order = req.body;
  if (order === null || typeof order !== 'object' || Array.isArray(order)) {
    return invalid(res, '', 'the body must be a JSON object');
  }
  const {customer, items} = order;
  if (typeof customer !== 'string') {
    return invalid(res, 'customer', 'customer must be a string');
  }
  if (!Array.isArray(items)) {
    return invalid(res, 'items', 'items must be an array');
  }
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (item === null || typeof item !== 'object' || typeof item.sku !== 'string') {
      return invalid(res, `items[${i}].sku`, 'sku must be a string');
    }
    if (!Number.isInteger(item.qty) || item.qty < 0 || item.qty > 4294967295) {
      return invalid(res, `items[${i}].qty`, 'qty must be an unsigned 32-bit integer');
    }
  }
  if (!customer.includes('@')) {
    return invalid(res, 'customer', 'customer must be an email address');
  }
  if (items.length === 0) {
    return invalid(res, 'items', 'an order needs at least one item');
  }
  const zero = items.findIndex(item => item.qty === 0);
  if (zero !== -1) {
    return invalid(res, `items[${zero}].qty`, 'qty must be at least 1');
  }
  res.status(202).json({id: randomUUID(), status: 'accepted'});
});
