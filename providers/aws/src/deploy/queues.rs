//! Queues (with redrive policies), topics, and the subscription of each
//! subscriber's queue to its topic.

use serde_json::json;

use super::{
    Renderer,
    cfn::{get_att, logical_id, queue_id, reference, stack_name},
};
use crate::names::sqs_name;

impl Renderer<'_> {
    /// Every queue of the spec (subscription and default dead-letter queues
    /// included), with its consumer's visibility and a redrive policy, the
    /// last resort behind the runtime's own dead-lettering, whose
    /// `maxReceiveCount` is well above the consumer's attempts
    /// (`conventions::redrive_receive_count`); a subscription queue is
    /// subscribed to its topic with raw delivery.
    pub(super) fn queues(&mut self) {
        for queue in &self.spec.queues {
            let id = queue_id(&queue.name);
            let mut properties = json!({
                "QueueName": stack_name(&sqs_name(&queue.name, queue.fifo)),
                "MessageRetentionPeriod": if queue.is_dead_letter { 1_209_600 } else { 345_600 },
            });
            if let Some(visibility) = queue.visibility_timeout {
                properties["VisibilityTimeout"] = json!(visibility.as_secs());
            }
            if queue.fifo {
                // No content-based deduplication: two equal bodies are two
                // messages (a ledger may well debit 10 twice); senders give ids.
                properties["FifoQueue"] = json!(true);
            }
            if let (Some(dlq), Some(count)) = (&queue.dead_letter, queue.max_receive_count) {
                properties["RedrivePolicy"] = json!({
                    "deadLetterTargetArn": get_att(&queue_id(dlq), "Arn"),
                    "maxReceiveCount": count,
                });
            }
            self.resources.insert(
                id.clone(),
                json!({ "Type": "AWS::SQS::Queue", "Properties": properties }),
            );
            if let Some(topic) = &queue.subscribes_to {
                self.subscribe(&queue.name, &id, &logical_id(topic, "Topic"));
            }
        }
    }

    /// Every topic.
    pub(super) fn topics(&mut self) {
        for topic in &self.spec.topics {
            self.resources.insert(
                logical_id(&topic.name, "Topic"),
                json!({
                    "Type": "AWS::SNS::Topic",
                    "Properties": { "TopicName": stack_name(&topic.name) }
                }),
            );
        }
    }

    /// Subscribes queue `name` (logical id `id`) to a topic, with raw
    /// delivery, and lets that topic send to it.
    fn subscribe(&mut self, name: &str, id: &str, topic_id: &str) {
        self.resources.insert(
            logical_id(name, "Subscription"),
            json!({
                "Type": "AWS::SNS::Subscription",
                "Properties": {
                    "Protocol": "sqs",
                    "TopicArn": reference(topic_id),
                    "Endpoint": get_att(id, "Arn"),
                    "RawMessageDelivery": true,
                }
            }),
        );
        self.resources.insert(
            logical_id(name, "QueuePolicy"),
            json!({
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [reference(id)],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Principal": { "Service": "sns.amazonaws.com" },
                            "Action": "sqs:SendMessage",
                            "Resource": get_att(id, "Arn"),
                            "Condition": { "ArnEquals": { "aws:SourceArn": reference(topic_id) } }
                        }]
                    }
                }
            }),
        );
    }
}
