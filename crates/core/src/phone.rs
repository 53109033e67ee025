//! A phone number is the key by which a guest is found at the counter, so the
//! many ways people write one must land on a single canonical form.
//!
//! Mainland China mobiles (`13800138000`, `+86 138 0013 8000`,
//! `86-138-0013-8000`, `0086 13800138000`) become `+8613800138000`.
//! Anything else must be written internationally (`+` or `00` and a country
//! code) and becomes E.164: `+` and 8 to 15 digits.

use crate::{DomainError, Result};
use std::fmt;

/// A validated phone number in E.164 form. Its `Debug` output is masked so a
/// stray `{:?}` in a log line never prints the number.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(input: &str) -> Result<Phone> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(DomainError::InvalidPhone("empty".into()));
        }
        let mut digits = String::with_capacity(trimmed.len());
        let mut plus = false;
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => plus = true,
                ' ' | '-' | '(' | ')' | '.' | '\u{3000}' => {}
                _ => {
                    return Err(DomainError::InvalidPhone(
                        "only digits, spaces, dashes, brackets and a leading + are allowed".into(),
                    ))
                }
            }
        }
        let international = if plus {
            Some(digits.as_str())
        } else {
            digits.strip_prefix("00")
        };
        match international {
            Some(rest) => {
                if let Some(national) = rest.strip_prefix("86") {
                    return Self::mainland(national);
                }
                Self::e164(rest)
            }
            None => {
                if digits.len() == 13 && digits.starts_with("86") {
                    return Self::mainland(&digits[2..]);
                }
                if digits.len() == 11 && digits.starts_with('1') {
                    return Self::mainland(&digits);
                }
                Err(DomainError::InvalidPhone(
                    "write an 11-digit mainland mobile or an international number starting with +"
                        .into(),
                ))
            }
        }
    }

    fn mainland(national: &str) -> Result<Phone> {
        let bytes = national.as_bytes();
        if bytes.len() != 11 || bytes[0] != b'1' || !(b'3'..=b'9').contains(&bytes[1]) {
            return Err(DomainError::InvalidPhone(
                "a mainland mobile has 11 digits starting 13–19".into(),
            ));
        }
        Ok(Phone(format!("+86{national}")))
    }

    fn e164(digits: &str) -> Result<Phone> {
        if digits.starts_with('0') {
            return Err(DomainError::InvalidPhone(
                "country codes never start with 0".into(),
            ));
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(DomainError::InvalidPhone(
                "an international number has 8 to 15 digits".into(),
            ));
        }
        Ok(Phone(format!("+{digits}")))
    }

    /// The canonical E.164 text, e.g. `+8613800138000`. Personal data: encrypt it.
    pub fn e164_str(&self) -> &str {
        &self.0
    }

    /// What screens and exports show: `138****8000` for mainland mobiles,
    /// `+44*******1234` style for others (country code, stars, last four).
    pub fn masked(&self) -> String {
        if let Some(national) = self.0.strip_prefix("+86") {
            return format!("{}****{}", &national[..3], &national[7..]);
        }
        let digits = &self.0[1..];
        let keep_head = digits.len().min(2);
        let tail = &digits[digits.len() - 4..];
        let stars = "*".repeat(digits.len() - keep_head - 4);
        format!("+{}{}{}", &digits[..keep_head], stars, tail)
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mainland_formats_are_one_number() {
        let forms = [
            "13800138000",
            "+86 138 0013 8000",
            "86-138-0013-8000",
            "0086 13800138000",
            "+86(138)00138000",
            "138-0013-8000",
        ];
        for f in forms {
            assert_eq!(Phone::parse(f).unwrap().e164_str(), "+8613800138000", "{f}");
        }
    }

    #[test]
    fn masked_shows_first_three_and_last_four() {
        assert_eq!(Phone::parse("13800138000").unwrap().masked(), "138****8000");
        assert_eq!(
            Phone::parse("+44 20 7946 0958").unwrap().masked(),
            "+44******0958"
        );
    }

    #[test]
    fn rejects_what_is_not_a_phone() {
        for bad in [
            "",
            "12345",
            "12800138000",
            "1380013800",
            "138001380001",
            "abc13800138000",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "02012345678",
            "+86 20 1234 5678",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn international_numbers_keep_e164() {
        assert_eq!(
            Phone::parse("+1 (415) 555-2671").unwrap().e164_str(),
            "+14155552671"
        );
        assert_eq!(
            Phone::parse("00852 9123 4567").unwrap().e164_str(),
            "+85291234567"
        );
    }

    #[test]
    fn debug_never_prints_the_number() {
        let p = Phone::parse("13800138000").unwrap();
        assert!(!format!("{p:?}").contains("13800138000"));
    }

    proptest! {
        #[test]
        fn every_writing_of_a_mainland_mobile_is_the_same(second in 3u8..=9, rest in 0u64..1_000_000_000) {
            let national = format!("1{second}{rest:09}");
            let spaced = format!("+86 {} {} {}", &national[..3], &national[3..7], &national[7..]);
            let dashed = format!("86-{}-{}-{}", &national[..3], &national[3..7], &national[7..]);
            let a = Phone::parse(&national).unwrap();
            prop_assert_eq!(&a, &Phone::parse(&spaced).unwrap());
            prop_assert_eq!(&a, &Phone::parse(&dashed).unwrap());
            prop_assert_eq!(a.masked().len(), 11);
        }
    }
}
