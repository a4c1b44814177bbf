//! Service account ids: one per function, and the app's invoker.

/// The fewest and most characters of a service account id.
const ACCOUNT_ID_LENGTH: (usize, usize) = (6, 30);

/// How many hex digits of the name's hash keep a shortened id apart from
/// the others.
const HASH_DIGITS: usize = 6;

/// The service account id for `name` (a Cloud Run service name, or the
/// invoker's): `name` itself when it is a valid id (6 to 30 lower-case
/// letters, digits and `-`, starting with a letter, not ending with `-`);
/// otherwise as much of it as fits, `-` and six hex digits of its hash,
/// so that a long or short name still gets an id of its own, the same on
/// every run.
///
/// ```
/// use cloudfn_gcp::deploy::account_id;
///
/// assert_eq!(account_id("shop-charge"), "shop-charge");
/// let long = account_id("shop-production-order-notifications");
/// assert!(long.starts_with("shop-production-order-n-") && long.len() == 30);
/// assert_eq!(long, account_id("shop-production-order-notifications"));
/// ```
pub fn account_id(name: &str) -> String {
    if is_account_id(name) {
        return name.to_owned();
    }
    let stem: String = name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .take(ACCOUNT_ID_LENGTH.1 - HASH_DIGITS - 1)
        .collect();
    let stem = stem.trim_end_matches('-');
    let stem = if stem.starts_with(|c: char| c.is_ascii_lowercase()) {
        stem.to_owned()
    } else {
        // An id starts with a letter; `sa` keeps it at six characters or more.
        format!("sa{}", stem.chars().take(21).collect::<String>())
    };
    let hash = fnv1a(name.as_bytes()) & ((1 << (4 * HASH_DIGITS)) - 1);
    format!("{stem}-{hash:0width$x}", width = HASH_DIGITS)
}

/// The email of account `id` in `project`.
pub fn account_email(id: &str, project: &str) -> String {
    format!("{id}@{project}.iam.gserviceaccount.com")
}

/// Whether `id` is an id IAM takes for a service account.
pub(crate) fn is_account_id(id: &str) -> bool {
    (ACCOUNT_ID_LENGTH.0..=ACCOUNT_ID_LENGTH.1).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// FNV-1a, 64 bits: a hash that is the same on every build and platform
/// (std's `DefaultHasher` promises neither), for names and image tags, not
/// for security.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_the_name_when_it_fits_else_a_prefix_and_a_hash() {
        assert_eq!(account_id("all-checkout"), "all-checkout");
        assert_eq!(account_id("all-invoker"), "all-invoker");
        for name in [
            "f",
            "a-b",
            "shop-production-order-notifications-for-customers",
            "shop-production-order-notifications-for-customerz",
            "shop-production-order-------x",
            "9lives",
            "",
        ] {
            let id = account_id(name);
            assert!(is_account_id(&id), "`{id}` from `{name}` is no account id");
            assert_eq!(id, account_id(name), "the same name, the same id");
        }
        assert_ne!(
            account_id("shop-production-order-notifications-for-customers"),
            account_id("shop-production-order-notifications-for-customerz"),
            "names sharing their first 23 characters still get ids of their own"
        );
        assert_eq!(account_id("a-b").len(), 10);
        assert_eq!(
            account_email("all-charge", "${PROJECT}"),
            "all-charge@${PROJECT}.iam.gserviceaccount.com"
        );
    }
}
