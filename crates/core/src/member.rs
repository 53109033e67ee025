//! The validated shape of a member's profile. Handlers parse request bodies
//! into these types before anything reaches the database, so every rule about
//! what a member may look like lives here.

use crate::phone::Phone;
use crate::{DomainError, Result};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Female,
    Male,
    Other,
    Unknown,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        }
    }
    pub fn parse(s: &str) -> Option<Gender> {
        [Gender::Female, Gender::Male, Gender::Other, Gender::Unknown]
            .into_iter()
            .find(|g| g.as_str() == s)
    }
}

/// Where a member first signed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceChannel {
    Pos,
    H5,
    Wechat,
    App,
    Import,
    Console,
}

impl SourceChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceChannel::Pos => "pos",
            SourceChannel::H5 => "h5",
            SourceChannel::Wechat => "wechat",
            SourceChannel::App => "app",
            SourceChannel::Import => "import",
            SourceChannel::Console => "console",
        }
    }
}

/// Marketing channels a member can consent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentChannel {
    Sms,
    Email,
    Wechat,
}

impl ConsentChannel {
    pub const ALL: [ConsentChannel; 3] = [
        ConsentChannel::Sms,
        ConsentChannel::Email,
        ConsentChannel::Wechat,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentChannel::Sms => "sms",
            ConsentChannel::Email => "email",
            ConsentChannel::Wechat => "wechat",
        }
    }
    pub fn parse(s: &str) -> Option<ConsentChannel> {
        ConsentChannel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Age bands used by reports (seed 001 cuts by age group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum AgeGroup {
    #[serde(rename = "under_18")]
    Under18,
    #[serde(rename = "18_24")]
    From18To24,
    #[serde(rename = "25_34")]
    From25To34,
    #[serde(rename = "35_44")]
    From35To44,
    #[serde(rename = "45_54")]
    From45To54,
    #[serde(rename = "55_plus")]
    From55,
}

impl AgeGroup {
    pub fn as_str(self) -> &'static str {
        match self {
            AgeGroup::Under18 => "under_18",
            AgeGroup::From18To24 => "18_24",
            AgeGroup::From25To34 => "25_34",
            AgeGroup::From35To44 => "35_44",
            AgeGroup::From45To54 => "45_54",
            AgeGroup::From55 => "55_plus",
        }
    }

    pub fn parse(s: &str) -> Option<AgeGroup> {
        use AgeGroup::*;
        [
            Under18, From18To24, From25To34, From35To44, From45To54, From55,
        ]
        .into_iter()
        .find(|g| g.as_str() == s)
    }

    /// The band of someone born on `birthday`, as of `today`.
    pub fn of(birthday: NaiveDate, today: NaiveDate) -> AgeGroup {
        let mut age = today.year() - birthday.year();
        if (today.month(), today.day()) < (birthday.month(), birthday.day()) {
            age -= 1;
        }
        match age {
            i32::MIN..=17 => AgeGroup::Under18,
            18..=24 => AgeGroup::From18To24,
            25..=34 => AgeGroup::From25To34,
            35..=44 => AgeGroup::From35To44,
            45..=54 => AgeGroup::From45To54,
            _ => AgeGroup::From55,
        }
    }
}

/// Parse `YYYY-MM-DD`: a real calendar date, not in the future, after 1900.
pub fn parse_birthday(field: &'static str, text: &str, today: NaiveDate) -> Result<NaiveDate> {
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        DomainError::InvalidDate {
            field,
            reason: format!("`{text}` is not a calendar date written YYYY-MM-DD"),
        }
    })?;
    if text.trim().len() != 10 {
        return Err(DomainError::InvalidDate {
            field,
            reason: format!("`{text}` must be written YYYY-MM-DD"),
        });
    }
    if date > today {
        return Err(DomainError::InvalidDate {
            field,
            reason: "is in the future".into(),
        });
    }
    if date.year() < 1900 {
        return Err(DomainError::InvalidDate {
            field,
            reason: "is before 1900".into(),
        });
    }
    Ok(date)
}

/// A member's name: 1–50 characters, no control characters.
pub fn parse_name(text: &str) -> Result<String> {
    let name = text.trim();
    let n = name.chars().count();
    if n == 0 || n > 50 {
        return Err(DomainError::invalid("name", "must be 1 to 50 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

/// A plausible e-mail address (one `@`, a dot in the domain, no spaces).
pub fn parse_email(text: &str) -> Result<String> {
    let email = text.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.contains(char::is_whitespace)
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if !valid {
        return Err(DomainError::invalid("email", "is not an e-mail address"));
    }
    Ok(email)
}

/// A tag (`辣`, `VIP`, `素食`, `生日宴`): 1–32 characters, no commas.
pub fn parse_tag(text: &str) -> Result<String> {
    let tag = text.trim();
    let n = tag.chars().count();
    if n == 0 || n > 32 {
        return Err(DomainError::invalid("tag", "must be 1 to 32 characters"));
    }
    if tag.contains(',') || tag.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "tag",
            "must not contain commas or control characters",
        ));
    }
    Ok(tag.to_string())
}

/// Free text kept for service: notes, anniversaries' labels. At most 2000 chars.
pub fn parse_note(field: &'static str, text: &str) -> Result<String> {
    if text.chars().count() > 2000 {
        return Err(DomainError::invalid(
            field,
            "must be at most 2000 characters",
        ));
    }
    Ok(text.trim().to_string())
}

/// What a guest likes and must avoid; learned from orders later, editable by staff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TasteProfile {
    /// 0 不辣, 1 微辣, 2 中辣, 3 特辣, 4 变态辣.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spice_level: Option<u8>,
    #[serde(default)]
    pub allergies: Vec<String>,
    #[serde(default)]
    pub dislikes: Vec<String>,
    #[serde(default)]
    pub favourite_dishes: Vec<String>,
}

impl TasteProfile {
    pub fn validate(self) -> Result<TasteProfile> {
        if let Some(level) = self.spice_level {
            if level > 4 {
                return Err(DomainError::invalid("taste.spice_level", "must be 0 to 4"));
            }
        }
        for list in [&self.allergies, &self.dislikes, &self.favourite_dishes] {
            if list.len() > 50 {
                return Err(DomainError::invalid("taste", "at most 50 entries per list"));
            }
            if list
                .iter()
                .any(|s| s.trim().is_empty() || s.chars().count() > 50)
            {
                return Err(DomainError::invalid(
                    "taste",
                    "entries must be 1 to 50 characters",
                ));
            }
        }
        Ok(self)
    }
}

/// A dated occasion the guest told us about (wedding anniversary, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Anniversary {
    pub label: String,
    /// `YYYY-MM-DD`
    pub date: String,
}

impl Anniversary {
    pub fn validate(self, today: NaiveDate) -> Result<Anniversary> {
        let label = parse_note("anniversaries.label", &self.label)?;
        if label.is_empty() || label.chars().count() > 30 {
            return Err(DomainError::invalid(
                "anniversaries.label",
                "must be 1 to 30 characters",
            ));
        }
        let date = NaiveDate::parse_from_str(&self.date, "%Y-%m-%d").map_err(|_| {
            DomainError::InvalidDate {
                field: "anniversaries.date",
                reason: format!("`{}` is not a calendar date written YYYY-MM-DD", self.date),
            }
        })?;
        if date > today {
            return Err(DomainError::InvalidDate {
                field: "anniversaries.date",
                reason: "is in the future".into(),
            });
        }
        Ok(Anniversary {
            label,
            date: date.format("%Y-%m-%d").to_string(),
        })
    }
}

/// A new member, validated.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub phone: Phone,
    pub name: Option<String>,
    pub gender: Option<Gender>,
    pub birthday: Option<NaiveDate>,
    pub email: Option<String>,
    pub home_store: Option<String>,
    pub city: Option<String>,
    pub age_group: Option<AgeGroup>,
    pub source: SourceChannel,
    pub referrer_code: Option<String>,
    pub consents: Vec<(ConsentChannel, bool)>,
    pub tags: Vec<String>,
    pub taste: TasteProfile,
    pub notes: Option<String>,
    pub anniversaries: Vec<Anniversary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn birthdays() {
        let today = day("2026-11-24");
        assert_eq!(
            parse_birthday("birthday", "1990-02-28", today).unwrap(),
            day("1990-02-28")
        );
        for bad in [
            "1990-02-30",
            "1990-13-01",
            "90-01-01",
            "2030-01-01",
            "1899-12-31",
            "1990/01/01",
            "1990-1-1",
        ] {
            assert!(parse_birthday("birthday", bad, today).is_err(), "{bad}");
        }
    }

    #[test]
    fn age_groups_turn_on_the_birthday() {
        let born = day("2000-06-15");
        assert_eq!(AgeGroup::of(born, day("2018-06-14")), AgeGroup::Under18);
        assert_eq!(AgeGroup::of(born, day("2018-06-15")), AgeGroup::From18To24);
        assert_eq!(AgeGroup::of(born, day("2025-06-15")), AgeGroup::From25To34);
    }

    #[test]
    fn emails_and_tags() {
        assert_eq!(
            parse_email(" Wang.Fang@Example.CN ").unwrap(),
            "wang.fang@example.cn"
        );
        for bad in ["", "a@b", "a b@c.cn", "@c.cn", "a@@c.cn", "a@.cn"] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_tag(" 辣 ").unwrap(), "辣");
        assert!(parse_tag("a,b").is_err());
        assert!(parse_tag("").is_err());
    }

    #[test]
    fn taste_limits() {
        let t = TasteProfile {
            spice_level: Some(5),
            ..Default::default()
        };
        assert!(t.validate().is_err());
        let t = TasteProfile {
            spice_level: Some(3),
            allergies: vec!["花生".into()],
            ..Default::default()
        };
        assert!(t.validate().is_ok());
    }
}
