//! The ECR API's routes: one path (`[ecr] path`, `/` by default), the
//! operation in `X-Amz-Target` (`AmazonEC2ContainerRegistry_V20150921.
//! DescribeImages`) and the repository in the JSON body. Every operation of
//! the service model (botocore's `ecr` 2015-09-21) is listed here with what
//! it acts on, so the gate's table ([`crate::gate::require`]) can say what
//! each requires; the handlers ([`crate::api::ecr`]) read the repository
//! from the same parsed call the gate checked.

use auth::Action;

/// `X-Amz-Target`'s prefix for ECR.
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";

/// What an operation acts on, for the access it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Any signed caller (`GetAuthorizationToken`: the key's own rights
    /// follow it into the login).
    Signed,
    /// An action on the repository named by `repositoryName`.
    Repo(Action),
    /// An action on the repository an ARN (`resourceArn`) names.
    Resource(Action),
    /// A listing showing only what the caller may read.
    Browse,
    /// Registry-wide settings: administrators.
    Admin,
    /// In the model, not served here: answered with ECR's error shape.
    Unsupported,
}

use Action::{Delete, Pull, Push};
use OpKind::{Admin, Browse, Repo, Resource, Signed, Unsupported};

/// Every operation of the service model, and what it acts on. Settings
/// that decide what goes and what pushes may do (lifecycle policies, tag
/// immutability) need the strongest per-repository right, as in
/// `/api/v1`.
pub const OPERATIONS: [(&str, OpKind); 62] = [
    ("BatchCheckLayerAvailability", Repo(Pull)),
    ("BatchDeleteImage", Repo(Delete)),
    ("BatchGetImage", Repo(Pull)),
    ("BatchGetRepositoryScanningConfiguration", Unsupported),
    ("CompleteLayerUpload", Repo(Push)),
    ("CreatePullThroughCacheRule", Admin),
    ("CreateRepository", Repo(Push)),
    ("CreateRepositoryCreationTemplate", Unsupported),
    ("DeleteLifecyclePolicy", Repo(Delete)),
    ("DeletePullThroughCacheRule", Admin),
    ("DeleteRegistryPolicy", Unsupported),
    ("DeleteRepository", Repo(Delete)),
    ("DeleteRepositoryCreationTemplate", Unsupported),
    ("DeleteRepositoryPolicy", Unsupported),
    ("DeleteSigningConfiguration", Unsupported),
    ("DeregisterPullTimeUpdateExclusion", Unsupported),
    ("DescribeImageReplicationStatus", Unsupported),
    ("DescribeImageScanFindings", Unsupported),
    ("DescribeImageSigningStatus", Unsupported),
    ("DescribeImages", Repo(Pull)),
    ("DescribePullThroughCacheRules", Admin),
    ("DescribeRegistry", Admin),
    ("DescribeReplicationBackfillResults", Unsupported),
    ("DescribeRepositories", Browse),
    ("DescribeRepositoryCreationTemplates", Unsupported),
    ("GetAccountSetting", Unsupported),
    ("GetAuthorizationToken", Signed),
    ("GetDownloadUrlForLayer", Repo(Pull)),
    ("GetLifecyclePolicy", Repo(Pull)),
    ("GetLifecyclePolicyPreview", Repo(Pull)),
    ("GetRegistryPolicy", Unsupported),
    ("GetRegistryScanningConfiguration", Unsupported),
    ("GetRepositoryPolicy", Unsupported),
    ("GetSigningConfiguration", Unsupported),
    ("InitiateLayerUpload", Repo(Push)),
    ("ListImageReferrers", Unsupported),
    ("ListImages", Repo(Pull)),
    ("ListPullTimeUpdateExclusions", Unsupported),
    ("ListReplicationBackfills", Unsupported),
    ("ListTagsForResource", Resource(Pull)),
    ("PutAccountSetting", Unsupported),
    ("PutImage", Repo(Push)),
    ("PutImageScanningConfiguration", Unsupported),
    ("PutImageTagMutability", Repo(Delete)),
    ("PutLifecyclePolicy", Repo(Delete)),
    ("PutRegistryPolicy", Unsupported),
    ("PutRegistryScanningConfiguration", Unsupported),
    ("PutReplicationConfiguration", Unsupported),
    ("PutSigningConfiguration", Unsupported),
    ("RegisterPullTimeUpdateExclusion", Unsupported),
    ("SetRepositoryPolicy", Unsupported),
    ("StartImageScan", Unsupported),
    ("StartLifecyclePolicyPreview", Repo(Pull)),
    ("StartReplicationBackfill", Unsupported),
    ("StopReplicationBackfill", Unsupported),
    ("TagResource", Resource(Push)),
    ("UntagResource", Resource(Push)),
    ("UpdateImageStorageClass", Unsupported),
    ("UpdatePullThroughCacheRule", Admin),
    ("UpdateRepositoryCreationTemplate", Unsupported),
    ("UploadLayerPart", Repo(Push)),
    ("ValidatePullThroughCacheRule", Admin),
];

/// One ECR request, as the gate and the handler both see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrCall {
    /// The operation's name; `None`: not an operation of the model.
    pub operation: Option<&'static str>,
    pub kind: OpKind,
    /// The repository it names (`repositoryName`, or a `resourceArn`'s),
    /// if the operation acts on one and the body names it.
    pub repository: Option<String>,
}

/// The repository part of `arn:aws:ecr:REGION:ID:repository/NAME` (the
/// handler checks the region and ID are ours).
pub fn arn_repository(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws:ecr:")?;
    let mut parts = rest.splitn(3, ':');
    let (_region, _id, resource) = (parts.next()?, parts.next()?, parts.next()?);
    resource
        .strip_prefix("repository/")
        .filter(|n| !n.is_empty())
}

impl EcrCall {
    /// The call `target` (the `X-Amz-Target` value) makes with `body`.
    pub fn parse(target: &str, body: &serde_json::Value) -> EcrCall {
        let name = target.strip_prefix(TARGET_PREFIX);
        let found = name.and_then(|n| OPERATIONS.iter().find(|(op, _)| *op == n));
        let Some(&(operation, kind)) = found else {
            return EcrCall {
                operation: None,
                kind: Signed,
                repository: None,
            };
        };
        let field = |k: &str| body.get(k).and_then(|v| v.as_str());
        let repository = match kind {
            Repo(_) => field("repositoryName"),
            Resource(_) => field("resourceArn").and_then(arn_repository),
            _ => None,
        };
        EcrCall {
            operation: Some(operation),
            kind,
            repository: repository.map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operations_are_unique_and_sorted() {
        for w in OPERATIONS.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
    }

    #[test]
    fn calls_name_their_repository() {
        let c = EcrCall::parse(
            "AmazonEC2ContainerRegistry_V20150921.DescribeImages",
            &json!({"repositoryName": "team/app"}),
        );
        assert_eq!(c.operation, Some("DescribeImages"));
        assert_eq!(c.kind, Repo(Pull));
        assert_eq!(c.repository.as_deref(), Some("team/app"));
        let c = EcrCall::parse(
            "AmazonEC2ContainerRegistry_V20150921.TagResource",
            &json!({"resourceArn": "arn:aws:ecr:us-east-1:000000000000:repository/a/b"}),
        );
        assert_eq!(c.repository.as_deref(), Some("a/b"));
        let c = EcrCall::parse("AmazonEC2ContainerRegistry_V20150921.Nope", &json!({}));
        assert_eq!(c.operation, None);
        let c = EcrCall::parse("DynamoDB_20120810.ListTables", &json!({}));
        assert_eq!(c.operation, None);
        // A name that is not a string names nothing.
        let c = EcrCall::parse(
            "AmazonEC2ContainerRegistry_V20150921.BatchDeleteImage",
            &json!({"repositoryName": 3}),
        );
        assert_eq!(c.repository, None);
        assert_eq!(arn_repository("arn:aws:ecr:r:1:repository/"), None);
        assert_eq!(arn_repository("arn:aws:s3:::bucket"), None);
    }
}
