//! The classifier against a labelled set of guest feedback written for this
//! test (`data/feedback_labelled.tsv`: category, critical, rating, text),
//! not the rules' own phrases copied back. Prints category accuracy and
//! critical recall; a missed critical complaint fails the test.

use regulars_core::feedback::{classify, Category, ClassifierRules, Severity};
use std::collections::BTreeMap;

struct Labelled {
    category: Category,
    critical: bool,
    rating: Option<u8>,
    text: String,
}

fn labelled_set() -> Vec<Labelled> {
    include_str!("data/feedback_labelled.tsv")
        .lines()
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
fn classifier_finds_every_critical_complaint_and_most_categories() {
    let rules = ClassifierRules::default();
    let set = labelled_set();
    assert!(set.len() >= 200, "the labelled set has {} rows", set.len());
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
    println!("labelled feedback: {} rows", set.len());
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
    assert!(missed.is_empty(), "critical complaints missed: {missed:#?}");
    assert!(
        accuracy >= 0.80,
        "category accuracy {:.1}% is below 80%",
        accuracy * 100.0
    );
}
