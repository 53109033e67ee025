//! The classifier against labelled guest feedback written for these tests
//! (category, critical, rating, text), not the rules' own phrases copied
//! back: `feedback_labelled.tsv` (283 short app reviews, the set the default
//! rules were tuned on) and `feedback_heldout.tsv` (160 call-centre notes,
//! long reviews and table comments, written afterwards by someone who never
//! saw the rules, and not tuned on). Prints category accuracy and critical
//! recall; a missed critical complaint fails the test.

use regulars_core::feedback::{classify, Category, ClassifierRules, Severity};
use std::collections::BTreeMap;

struct Labelled {
    category: Category,
    critical: bool,
    rating: Option<u8>,
    text: String,
}

fn labelled_set(tsv: &str) -> Vec<Labelled> {
    tsv.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 4, "line {}: {line}", i + 2);
            Labelled {
                category: Category::parse(cols[0])
                    .unwrap_or_else(|| panic!("line {}: {}", i + 2, cols[0])),
                critical: cols[1] == "1",
                rating: cols[2].parse().ok(),
                text: cols[3].to_string(),
            }
        })
        .collect()
}

#[test]
fn on_the_tuning_set_every_critical_complaint_is_found() {
    let accuracy = evaluate("tuning set", include_str!("data/feedback_labelled.tsv"));
    assert!(
        accuracy >= 0.85,
        "category accuracy {:.1}% is below 85%",
        accuracy * 100.0
    );
}

#[test]
fn on_the_held_out_set_every_critical_complaint_is_found() {
    let accuracy = evaluate("held-out set", include_str!("data/feedback_heldout.tsv"));
    assert!(
        accuracy >= 0.70,
        "category accuracy {:.1}% is below 70%",
        accuracy * 100.0
    );
}

/// Classify every row, print the report, fail on a missed critical one;
/// answers the category accuracy.
fn evaluate(name: &str, tsv: &str) -> f64 {
    let rules = ClassifierRules::default();
    let set = labelled_set(tsv);
    assert!(set.len() >= 150, "the {name} has {} rows", set.len());
    let mut right = 0;
    let mut per: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    let (mut critical, mut found, mut false_alarms) = (0, 0, 0);
    let mut missed = Vec::new();
    let mut wrong = Vec::new();
    for row in &set {
        let got = classify(&rules, &row.text, row.rating, None);
        let entry = per.entry(row.category.as_str()).or_default();
        entry.0 += 1;
        if got.category == row.category {
            right += 1;
            entry.1 += 1;
        } else {
            wrong.push(format!(
                "{} → {}: {}",
                row.category.as_str(),
                got.category.as_str(),
                row.text
            ));
        }
        if row.critical {
            critical += 1;
            if got.severity == Severity::Critical {
                found += 1;
            } else {
                missed.push(row.text.clone());
            }
        } else if got.severity == Severity::Critical {
            false_alarms += 1;
        }
    }
    let accuracy = right as f64 / set.len() as f64;
    let recall = found as f64 / critical as f64;
    println!("{name}: {} rows", set.len());
    println!(
        "category accuracy: {:.1}% ({right}/{})",
        accuracy * 100.0,
        set.len()
    );
    for (cat, (n, ok)) in &per {
        println!(
            "  {cat:<17} {ok:>3}/{n:<3} {:.0}%",
            *ok as f64 * 100.0 / *n as f64
        );
    }
    println!(
        "critical recall: {:.1}% ({found}/{critical}); false alarms: {false_alarms}",
        recall * 100.0
    );
    for w in &wrong {
        println!("  miss: {w}");
    }
    assert!(
        missed.is_empty(),
        "{name}: critical complaints missed: {missed:#?}"
    );
    accuracy
}
