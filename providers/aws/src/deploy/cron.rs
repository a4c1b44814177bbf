//! Neutral cron → EventBridge cron.

use cloudfn_core::Error;

/// A neutral five-field cron expression as an EventBridge one:
/// `cron(min hour day month weekday year)`, with `?` in one day field and
/// weekdays counted from 1 (Sunday) instead of 0.
pub fn eventbridge_cron(cron: &str) -> Result<String, Error> {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    let [minute, hour, mut day, month, mut weekday] = fields[..] else {
        return Err(Error::invalid(format!(
            "cron `{cron}` does not have five fields"
        )));
    };
    let weekday_aws;
    match (day, weekday) {
        (_, "*") => weekday = "?",
        ("*", _) => {
            day = "?";
            weekday_aws = shift_weekdays(weekday)?;
            weekday = &weekday_aws;
        }
        _ => {
            return Err(Error::invalid(format!(
                "cron `{cron}` sets both day of month and day of week, which EventBridge cannot express"
            )));
        }
    }
    Ok(format!("cron({minute} {hour} {day} {month} {weekday} *)"))
}

/// Unix weekdays are 0–6 from Sunday (7 is Sunday too); EventBridge's are 1–7.
/// Only weekday numbers shift: a step after `/` and the nth-weekday count
/// after `#` (`5#3`, the third Friday) are counts, kept as they are.
fn shift_weekdays(field: &str) -> Result<String, Error> {
    let mut out = String::new();
    let mut number = String::new();
    let flush = |number: &mut String, out: &mut String| -> Result<(), Error> {
        if !number.is_empty() {
            let n: u32 = number
                .parse()
                .map_err(|_| Error::invalid(format!("weekday `{number}` is not a number")))?;
            out.push_str(&(n % 7 + 1).to_string());
            number.clear();
        }
        Ok(())
    };
    let mut in_count = false;
    for c in field.chars() {
        if c.is_ascii_digit() && !in_count {
            number.push(c);
        } else {
            flush(&mut number, &mut out)?;
            in_count = matches!(c, '/' | '#') || (in_count && c.is_ascii_digit());
            out.push(c);
        }
    }
    flush(&mut number, &mut out)?;
    Ok(out)
}
