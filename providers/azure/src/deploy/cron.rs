//! Neutral cron → the timer trigger's NCRONTAB.

use cloudfn_core::Error;

/// A neutral five-field cron expression as the timer trigger's six-field
/// NCRONTAB: a seconds field of `0` in front. NCRONTAB has no `L`, `W`, `#`
/// or `?`; an expression using them is refused by name.
///
/// ```
/// assert_eq!(cloudfn_azure::deploy::ncrontab("*/5 * * * 1-5").unwrap(), "0 */5 * * * 1-5");
/// assert!(cloudfn_azure::deploy::ncrontab("0 0 L * *").is_err());
/// ```
pub fn ncrontab(cron: &str) -> Result<String, Error> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(Error::invalid(format!(
            "cron `{cron}` does not have five fields"
        )));
    }
    if let Some(c) = cron.chars().find(|c| matches!(c, 'L' | 'W' | '#' | '?')) {
        return Err(Error::invalid(format!(
            "cron `{cron}` uses `{c}`, which Azure's timer trigger (NCRONTAB) does not have"
        )));
    }
    Ok(format!("0 {}", fields.join(" ")))
}
