//! How neutral names become AWS names: SQS's FIFO suffix, and the
//! environment variables through which a deployment tells a function its
//! resources' URLs and ARNs. The deployment files, the dev emulation and the
//! clients read them here alike.

/// The environment variable that names a resource's physical id, as the
/// SAM template sets it: `CLOUDFN_QUEUE_URL_ORDERS_DLQ` for queue
/// `orders-dlq`.
pub fn resource_variable(prefix: &str, name: &str) -> String {
    let suffix: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{suffix}")
}

/// SQS wants FIFO queue names to end in `.fifo`.
pub fn sqs_name(name: &str, fifo: bool) -> String {
    if fifo && !name.ends_with(".fifo") {
        format!("{name}.fifo")
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_name_resources() {
        assert_eq!(
            resource_variable("CLOUDFN_QUEUE_URL_", "orders-dlq"),
            "CLOUDFN_QUEUE_URL_ORDERS_DLQ"
        );
        assert_eq!(
            resource_variable("CLOUDFN_TOPIC_ARN_", "order.paid"),
            "CLOUDFN_TOPIC_ARN_ORDER_PAID"
        );
        assert_eq!(sqs_name("ledger", true), "ledger.fifo");
        assert_eq!(sqs_name("ledger.fifo", true), "ledger.fifo");
        assert_eq!(sqs_name("jobs", false), "jobs");
    }
}
