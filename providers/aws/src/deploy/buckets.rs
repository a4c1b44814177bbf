//! Buckets, named so that policies can name them.

use cloudfn_core::Error;
use serde_json::{Value, json};

use super::{Renderer, cfn::logical_id};

/// A bucket's physical name: unique per account and region.
pub(super) fn bucket_name_pattern(bucket: &str) -> String {
    format!("{bucket}-${{AWS::AccountId}}-${{AWS::Region}}")
}

pub(super) fn bucket_name(bucket: &str) -> Value {
    json!({ "Fn::Sub": bucket_name_pattern(bucket) })
}

impl Renderer<'_> {
    /// Buckets get a deterministic name so the functions' policies can name
    /// them without referring to the bucket resource, which would make a
    /// circular dependency with its notification configuration.
    pub(super) fn buckets(&mut self) -> Result<(), Error> {
        for bucket in &self.spec.buckets {
            if bucket.is_empty()
                || !bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(Error::invalid(format!(
                    "bucket `{bucket}`: S3 bucket names take lower-case letters, digits and `-`"
                )));
            }
            self.resources.insert(
                logical_id(bucket, "Bucket"),
                json!({ "Type": "AWS::S3::Bucket", "Properties": { "BucketName": bucket_name(bucket) } }),
            );
        }
        Ok(())
    }
}
