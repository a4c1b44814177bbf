//! Who may call an HTTP function: declared once, rendered by every cloud.

use serde::{Deserialize, Serialize};

/// Who may call an HTTP function. Private unless declared otherwise: an
/// endpoint is opened to the internet only on purpose.
///
/// Every cloud renders the same declaration:
///
/// | access | AWS (HTTP API) | Azure Functions | Google Cloud Run functions |
/// |---|---|---|---|
/// | [`Access::Private`] | IAM authorizer: SigV4-signed callers with `execute-api:Invoke` | `authLevel: function` (a function key) | no `allUsers` invoker: callers with `run.invoker` |
/// | [`Access::Public`] | no authorizer | `authLevel: anonymous` | `allUsers` invoker |
/// | [`Access::Jwt`] | JWT authorizer with the issuer and audience | anonymous at the host; the token checked before the handler | public invoker; the token checked before the handler |
///
/// The local runtime serves every function openly and says at start which
/// are public.
///
/// ```
/// use cloudfn_core::{Access, Function, Method};
///
/// # async fn page(_: cloudfn_core::HttpRequest, _: cloudfn_core::Context) -> Result<cloudfn_core::HttpResponse, cloudfn_core::Error> { todo!() }
/// let f = Function::http("home", Method::Get, "/", page);
/// assert_eq!(f.policy().access, Access::Private);
/// let f = f.public();
/// assert_eq!(f.policy().access, Access::Public);
/// let f = Function::http("me", Method::Get, "/me", page)
///     .jwt("https://auth.example.com/", ["shop-api"]);
/// assert!(matches!(f.policy().access, Access::Jwt { .. }));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Access {
    /// Only callers the platform's own identity system lets in.
    #[default]
    Private,
    /// Anyone on the internet.
    Public,
    /// Callers bearing a JSON Web Token from `issuer` for one of `audience`.
    Jwt {
        /// The token issuer's URL (its OpenID configuration lives under it).
        issuer: String,
        /// The audiences accepted (`aud`); at least one.
        audience: Vec<String>,
    },
}

impl Access {
    /// Whether anyone on the internet may call the function without
    /// credentials.
    pub fn is_public(&self) -> bool {
        *self == Self::Public
    }

    /// Checks the declaration itself; the message names what is wrong.
    pub(crate) fn check(&self) -> Result<(), String> {
        match self {
            Self::Jwt { issuer, audience } => {
                if !issuer.starts_with("https://") {
                    return Err(format!("a JWT issuer is an https:// URL, not `{issuer}`"));
                }
                if audience.is_empty() || audience.iter().any(String::is_empty) {
                    return Err("a JWT authorizer needs at least one non-empty audience".into());
                }
                Ok(())
            }
            Self::Private | Self::Public => Ok(()),
        }
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Private => f.write_str("private"),
            Self::Public => f.write_str("public"),
            Self::Jwt { issuer, .. } => write!(f, "JWT from {issuer}"),
        }
    }
}
