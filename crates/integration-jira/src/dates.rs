//! The date and time shapes Jira sends: RFC 3339, Jira's own `2024-10-08T16:38:03.790+0800`
//! (offset without a colon), epoch milliseconds, plain dates and Server's
//! `2024-06-30 00:00:00.0`.

use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

const JIRA_MILLIS: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond][offset_hour sign:mandatory][offset_minute]"
);
const JIRA_SECONDS: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"
);
const ISO_DATE: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// A date-time with an offset: RFC 3339 or Jira's `+0800` form.
pub(crate) fn parse_datetime(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, JIRA_MILLIS))
        .or_else(|_| OffsetDateTime::parse(text, JIRA_SECONDS))
        .ok()
}

/// Epoch milliseconds (Jira's webhook `timestamp`); `None` when out of range.
pub(crate) fn from_epoch_millis(millis: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok()
}

/// A due date: an ISO date (`2024-06-30`), an ISO date-time (the date as written, in its own
/// offset), or Jira's `2024-06-30 00:00:00.0`.
pub(crate) fn parse_due_date(text: &str) -> Option<Date> {
    let text = text.trim();
    if let Ok(date) = Date::parse(text, ISO_DATE) {
        return Some(date);
    }
    if let Some(datetime) = parse_datetime(text) {
        return Some(datetime.date());
    }
    let (date, rest) = text.split_at_checked(10)?;
    let clock = rest.strip_prefix(' ')?;
    let is_clock = !clock.is_empty()
        && clock
            .chars()
            .all(|c| c.is_ascii_digit() || c == ':' || c == '.');
    if is_clock {
        Date::parse(date, ISO_DATE).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn parses_every_jira_datetime_shape() {
        assert_eq!(
            parse_datetime("2024-10-08T16:38:03.790+0800"),
            Some(datetime!(2024-10-08 16:38:03.790 +8))
        );
        assert_eq!(
            parse_datetime("2024-01-15T10:00:00.000+0000"),
            Some(datetime!(2024-01-15 10:00 UTC))
        );
        assert_eq!(
            parse_datetime("2024-10-08T16:38:03-0530"),
            Some(datetime!(2024-10-08 16:38:03 -5:30))
        );
        assert_eq!(
            parse_datetime("2024-01-15T10:30:00Z"),
            Some(datetime!(2024-01-15 10:30 UTC))
        );
        assert_eq!(
            parse_datetime("2024-01-15T10:30:00.5+01:00"),
            Some(datetime!(2024-01-15 10:30:00.5 +1))
        );
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-10-08T16:38:03.790",
            "1705312800000",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn epoch_millis_keep_the_milliseconds_and_reject_overflow() {
        assert_eq!(
            from_epoch_millis(1_705_314_598_123),
            Some(datetime!(2024-01-15 10:29:58.123 UTC))
        );
        assert_eq!(from_epoch_millis(i64::MAX), None);
        assert_eq!(from_epoch_millis(i64::MIN), None);
    }

    #[test]
    fn due_dates_in_every_shape() {
        assert_eq!(parse_due_date("2024-06-30"), Some(date!(2024 - 06 - 30)));
        assert_eq!(
            parse_due_date("2024-06-30 00:00:00.0"),
            Some(date!(2024 - 06 - 30))
        );
        assert_eq!(
            parse_due_date("2024-06-30T23:30:00.000-0700"),
            Some(date!(2024 - 06 - 30))
        );
        assert_eq!(
            parse_due_date("2024-06-30T08:00:00Z"),
            Some(date!(2024 - 06 - 30))
        );
        for bad in [
            "",
            "30/Jun/24",
            "2024-02-30",
            "2024-06-30x",
            "2024-06-30 tomorrow",
            "é2024-06-30",
        ] {
            assert_eq!(parse_due_date(bad), None, "{bad}");
        }
    }
}
