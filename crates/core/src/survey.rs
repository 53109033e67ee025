//! Surveys: question sets as data (post-visit NPS, the monthly satisfaction
//! survey with its dimensions), the check of one member's answers, and the
//! NPS arithmetic.

use crate::{DomainError, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// How often a member may answer: once per visit (order), or once a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SurveyKind {
    PostVisit,
    Monthly,
}

impl SurveyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SurveyKind::PostVisit => "post_visit",
            SurveyKind::Monthly => "monthly",
        }
    }
    pub fn parse(s: &str) -> Option<SurveyKind> {
        [SurveyKind::PostVisit, SurveyKind::Monthly]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// 0–10: how likely to recommend us.
    Nps,
    /// 1–5 stars for one dimension (food, service, environment, value, speed).
    Scale5,
    /// Free text, up to 1,000 characters.
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// `[a-z_]`, 1–32 characters: the key of the answer.
    pub id: String,
    pub text: String,
    pub kind: QuestionKind,
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveyDefinition {
    pub name: String,
    pub kind: SurveyKind,
    pub questions: Vec<Question>,
}

fn question(id: &str, text: &str, kind: QuestionKind, required: bool) -> Question {
    Question {
        id: id.into(),
        text: text.into(),
        kind,
        required,
    }
}

impl SurveyDefinition {
    /// After a visit: would you recommend us, and why.
    pub fn post_visit_nps() -> SurveyDefinition {
        SurveyDefinition {
            name: "用餐后推荐度 (NPS)".into(),
            kind: SurveyKind::PostVisit,
            questions: vec![
                question(
                    "nps",
                    "您有多大可能把我们推荐给朋友？(0–10)",
                    QuestionKind::Nps,
                    true,
                ),
                question("reason", "主要原因是？", QuestionKind::Text, false),
            ],
        }
    }

    /// Once a month: the five dimensions and a comment.
    pub fn monthly_satisfaction() -> SurveyDefinition {
        SurveyDefinition {
            name: "月度满意度调查".into(),
            kind: SurveyKind::Monthly,
            questions: vec![
                question("food", "菜品口味与品质", QuestionKind::Scale5, true),
                question("service", "服务态度", QuestionKind::Scale5, true),
                question("environment", "用餐环境", QuestionKind::Scale5, true),
                question("value", "性价比", QuestionKind::Scale5, true),
                question("speed", "上菜与结账速度", QuestionKind::Scale5, true),
                question(
                    "comment",
                    "还有什么想告诉我们的？",
                    QuestionKind::Text,
                    false,
                ),
            ],
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return Err(DomainError::invalid("name", "1 to 100 characters"));
        }
        if self.questions.is_empty() || self.questions.len() > 20 {
            return Err(DomainError::invalid("questions", "1 to 20 questions"));
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, q) in self.questions.iter().enumerate() {
            let ok_id = (1..=32).contains(&q.id.len())
                && q.id.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if !ok_id || !ids.insert(q.id.as_str()) {
                return Err(DomainError::invalid(
                    "questions",
                    format!("question {}: a unique id of a–z and _", i + 1),
                ));
            }
            if q.text.trim().is_empty() || q.text.chars().count() > 200 {
                return Err(DomainError::invalid(
                    "questions",
                    format!("question {}: text of 1 to 200 characters", i + 1),
                ));
            }
        }
        if self
            .questions
            .iter()
            .filter(|q| q.kind == QuestionKind::Nps)
            .count()
            > 1
        {
            return Err(DomainError::invalid(
                "questions",
                "at most one NPS question",
            ));
        }
        Ok(())
    }

    /// Check one member's answers against the questions.
    pub fn check(&self, answers: &BTreeMap<String, Value>) -> Result<Answers> {
        if let Some(unknown) = answers
            .keys()
            .find(|k| !self.questions.iter().any(|q| &q.id == *k))
        {
            return Err(DomainError::invalid(
                "answers",
                format!("no question `{unknown}` in this survey"),
            ));
        }
        let mut out = Answers::default();
        for q in &self.questions {
            let Some(value) = answers.get(&q.id).filter(|v| !v.is_null()) else {
                if q.required {
                    return Err(DomainError::invalid(
                        "answers",
                        format!("`{}` needs an answer", q.id),
                    ));
                }
                continue;
            };
            match q.kind {
                QuestionKind::Nps | QuestionKind::Scale5 => {
                    let range = if q.kind == QuestionKind::Nps {
                        0..=10
                    } else {
                        1..=5
                    };
                    let n = value
                        .as_i64()
                        .filter(|n| range.contains(n))
                        .ok_or_else(|| {
                            DomainError::invalid(
                                "answers",
                                format!(
                                    "`{}` takes a whole number from {} to {}",
                                    q.id,
                                    range.start(),
                                    range.end()
                                ),
                            )
                        })?;
                    if q.kind == QuestionKind::Nps {
                        out.nps = Some(n);
                    } else {
                        out.scores.insert(q.id.clone(), n);
                    }
                }
                QuestionKind::Text => {
                    let text = value
                        .as_str()
                        .map(str::trim)
                        .filter(|t| t.chars().count() <= 1000)
                        .ok_or_else(|| {
                            DomainError::invalid(
                                "answers",
                                format!("`{}` takes text of at most 1000 characters", q.id),
                            )
                        })?;
                    if !text.is_empty() {
                        out.texts.push(text.to_string());
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Checked answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers {
    pub nps: Option<i64>,
    /// Dimension → 1–5.
    pub scores: BTreeMap<String, i64>,
    pub texts: Vec<String>,
}

/// Promoters (9–10), passives (7–8), detractors (0–6).
pub fn nps_group(score: i64) -> &'static str {
    match score {
        9..=10 => "promoter",
        7..=8 => "passive",
        _ => "detractor",
    }
}

/// Net Promoter Score: % promoters − % detractors, −100 … 100.
pub fn net_promoter_score(scores: &[i64]) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    let n = scores.len() as f64;
    let promoters = scores.iter().filter(|s| **s >= 9).count() as f64;
    let detractors = scores.iter().filter(|s| **s <= 6).count() as f64;
    Some(((promoters - detractors) / n * 1000.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answers(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn nps_is_promoters_minus_detractors() {
        assert_eq!(net_promoter_score(&[10, 9, 8, 7, 6, 0]), Some(0.0));
        assert_eq!(net_promoter_score(&[10, 10, 10, 5]), Some(50.0));
        assert_eq!(net_promoter_score(&[]), None);
        assert_eq!(nps_group(7), "passive");
    }

    #[test]
    fn answers_are_checked_against_the_questions() {
        let s = SurveyDefinition::monthly_satisfaction();
        assert!(s.validate().is_ok());
        let ok = s
            .check(&answers(
                json!({"food": 5, "service": 4, "environment": 3, "value": 4, "speed": 2}),
            ))
            .unwrap();
        assert_eq!(ok.scores["speed"], 2);
        assert!(s.check(&answers(json!({"food": 6}))).is_err());
        assert!(
            s.check(&answers(
                json!({"food": 5, "service": 4, "environment": 3, "value": 4})
            ))
            .is_err(),
            "speed is required"
        );
        assert!(s
            .check(&answers(json!({"food": 5, "service": 4, "environment": 3, "value": 4, "speed": 2, "mood": 1})))
            .is_err());
        let nps = SurveyDefinition::post_visit_nps();
        let got = nps
            .check(&answers(json!({"nps": 3, "reason": "上菜慢"})))
            .unwrap();
        assert_eq!((got.nps, got.texts.len()), (Some(3), 1));
        assert!(nps.check(&answers(json!({"nps": 11}))).is_err());
        assert!(nps.check(&answers(json!({"nps": "10"}))).is_err());
    }
}
