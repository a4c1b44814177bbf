//! cloudfn-aws integration tests: event contracts on real AWS payloads, the
//! Runtime API loop against the project's own Runtime API server, and (with
//! `TEST_INTEGRATION=1`) SQS, SNS and Step Functions (a workflow's state
//! machine) on LocalStack, DynamoDB on moto.

mod dispatch;
mod events;
mod localstack;
mod runtime;
mod step_functions;
mod store;
mod support;
