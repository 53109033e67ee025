//! The points ledger's arithmetic (DESIGN.md §2). Entries are append-only;
//! every `earn` (and every transfer in) is a **lot** with its own expiry.
//! Redemption, expiry, refund clawback and transfers out consume lots
//! soonest-expiring first and record which lots they took from, so the same
//! point can never be taken twice. The store keeps the rows; these functions
//! decide what the rows say.

use serde::{Deserialize, Serialize};

/// Kinds of ledger entry, as API.md names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Earn,
    Redeem,
    Expire,
    Reverse,
    Adjust,
    TransferIn,
    TransferOut,
    Bonus,
    Compensation,
}

impl EntryKind {
    pub const ALL: [EntryKind; 9] = [
        EntryKind::Earn,
        EntryKind::Redeem,
        EntryKind::Expire,
        EntryKind::Reverse,
        EntryKind::Adjust,
        EntryKind::TransferIn,
        EntryKind::TransferOut,
        EntryKind::Bonus,
        EntryKind::Compensation,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Earn => "earn",
            EntryKind::Redeem => "redeem",
            EntryKind::Expire => "expire",
            EntryKind::Reverse => "reverse",
            EntryKind::Adjust => "adjust",
            EntryKind::TransferIn => "transfer_in",
            EntryKind::TransferOut => "transfer_out",
            EntryKind::Bonus => "bonus",
            EntryKind::Compensation => "compensation",
        }
    }
    pub fn parse(s: &str) -> Option<EntryKind> {
        EntryKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// Kinds whose positive entries open a lot.
    pub fn opens_lot(self) -> bool {
        matches!(
            self,
            EntryKind::Earn
                | EntryKind::TransferIn
                | EntryKind::Bonus
                | EntryKind::Compensation
                | EntryKind::Adjust
        )
    }
}

/// A lot with points still in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenLot {
    pub id: i64,
    pub expires_at: i64,
    pub remaining: i64,
}

/// Points taken from one lot by one consuming entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    pub lot_id: i64,
    pub points: i64,
}

/// Take `points` from `lots`, soonest-expiring first (ties: oldest lot first).
/// `None` when the lots do not hold that many points; nothing is taken then.
pub fn allocate(lots: &[OpenLot], points: i64) -> Option<Vec<Allocation>> {
    if points < 0 {
        return None;
    }
    let mut order = lots.to_vec();
    order.sort_by_key(|l| (l.expires_at, l.id));
    let taken = take_in_order(&order, points);
    (taken.iter().map(|a| a.points).sum::<i64>() == points).then_some(taken)
}

/// Take as much as possible of `points` (a refund clawback takes what is
/// there; the rest becomes a shortfall). Lots of `prefer` (the refunded
/// order's own lot) go first, then soonest-expiring.
pub fn allocate_up_to(lots: &[OpenLot], points: i64, prefer: Option<i64>) -> Vec<Allocation> {
    let mut order = lots.to_vec();
    order.sort_by_key(|l| (Some(l.id) != prefer, l.expires_at, l.id));
    take_in_order(&order, points.max(0))
}

/// Walk the lots in the given order, taking from each until `points` are taken.
fn take_in_order(lots: &[OpenLot], points: i64) -> Vec<Allocation> {
    let mut left = points;
    let mut taken = Vec::new();
    for lot in lots.iter().filter(|l| l.remaining > 0) {
        if left == 0 {
            break;
        }
        let take = lot.remaining.min(left);
        taken.push(Allocation {
            lot_id: lot.id,
            points: take,
        });
        left -= take;
    }
    taken
}

/// How many points a refund reverses. Reversal is proportional to the
/// refunded share of the paid amount, worked out on the running total so that
/// several partial refunds never reverse more, in sum, than one full refund:
/// after refunds totalling `refunded_total_fen`, `floor(earned × refunded /
/// paid)` points have been reversed. Returns this refund's share.
pub fn refund_reversal(
    earned: i64,
    paid_fen: i64,
    refunded_before_fen: i64,
    refund_fen: i64,
) -> i64 {
    if paid_fen <= 0 || earned <= 0 {
        return 0;
    }
    let before =
        (earned as i128 * refunded_before_fen.min(paid_fen) as i128 / paid_fen as i128) as i64;
    let after = (earned as i128 * (refunded_before_fen + refund_fen).min(paid_fen) as i128
        / paid_fen as i128) as i64;
    (after - before).clamp(0, earned - before)
}

/// A clawback split into what the balance can give and what is owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clawback {
    pub taken: i64,
    pub shortfall: i64,
}

/// Take `points` back from a member holding `balance`: never below zero, the
/// rest is a shortfall taken from the next earnings.
pub fn clawback(balance: i64, points: i64) -> Clawback {
    let taken = points.clamp(0, balance.max(0));
    Clawback {
        taken,
        shortfall: points.max(0) - taken,
    }
}

/// Of a new earning, how much settles an outstanding shortfall.
pub fn settle_debt(debt: i64, earned: i64) -> i64 {
    debt.max(0).min(earned.max(0))
}

/// Add whole months to a unix-ms instant in a fixed offset, clamping the day
/// (a lot earned on 31 March expires on 30 April of the next year + …).
pub fn add_months_ms(at_ms: i64, months: u32) -> i64 {
    use chrono::{DateTime, Months, Utc};
    DateTime::<Utc>::from_timestamp_millis(at_ms)
        .and_then(|t| t.checked_add_months(Months::new(months)))
        .map(|t| t.timestamp_millis())
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lot(id: i64, expires_at: i64, remaining: i64) -> OpenLot {
        OpenLot {
            id,
            expires_at,
            remaining,
        }
    }

    #[test]
    fn allocation_takes_soonest_expiring_first() {
        let lots = [lot(1, 300, 50), lot(2, 100, 30), lot(3, 200, 40)];
        let a = allocate(&lots, 60).unwrap();
        assert_eq!(
            a,
            vec![
                Allocation {
                    lot_id: 2,
                    points: 30
                },
                Allocation {
                    lot_id: 3,
                    points: 30
                }
            ]
        );
        assert_eq!(allocate(&lots, 121), None);
        assert_eq!(allocate(&lots, 0), Some(vec![]));
    }

    #[test]
    fn refunds_in_parts_never_reverse_more_than_a_whole_refund() {
        // 3 refunds of a third each of a 100-fen... order that earned 10 points.
        let r1 = refund_reversal(10, 300, 0, 100);
        let r2 = refund_reversal(10, 300, 100, 100);
        let r3 = refund_reversal(10, 300, 200, 100);
        assert_eq!(r1 + r2 + r3, 10);
        assert_eq!(refund_reversal(10, 300, 300, 100), 0);
        assert_eq!(refund_reversal(128, 12_800, 0, 6_400), 64);
    }

    #[test]
    fn clawback_never_goes_below_zero() {
        assert_eq!(
            clawback(30, 50),
            Clawback {
                taken: 30,
                shortfall: 20
            }
        );
        assert_eq!(settle_debt(20, 15), 15);
        assert_eq!(settle_debt(20, 100), 20);
    }

    proptest! {
        #[test]
        fn allocation_is_exact_and_from_soonest_lots(
            lots in proptest::collection::vec((0i64..50, 0i64..100), 0..12),
            want in 0i64..600,
        ) {
            let lots: Vec<OpenLot> = lots.iter().enumerate()
                .map(|(i, (e, r))| lot(i as i64, *e, *r)).collect();
            let held: i64 = lots.iter().map(|l| l.remaining).sum();
            match allocate(&lots, want) {
                None => prop_assert!(want > held),
                Some(a) => {
                    prop_assert_eq!(a.iter().map(|x| x.points).sum::<i64>(), want);
                    for x in &a {
                        let l = lots.iter().find(|l| l.id == x.lot_id).unwrap();
                        prop_assert!(x.points > 0 && x.points <= l.remaining);
                    }
                    // A later-expiring lot is touched only when every
                    // sooner one is emptied.
                    let last = a.last().map(|x| lots[x.lot_id as usize]);
                    if let Some(last) = last {
                        for l in &lots {
                            if (l.expires_at, l.id) < (last.expires_at, last.id) && l.remaining > 0 {
                                let took = a.iter().find(|x| x.lot_id == l.id).map(|x| x.points);
                                prop_assert_eq!(took, Some(l.remaining));
                            }
                        }
                    }
                }
            }
            let up_to = allocate_up_to(&lots, want, None);
            prop_assert_eq!(up_to.iter().map(|x| x.points).sum::<i64>(), want.min(held));
        }

        #[test]
        fn partial_refunds_sum_to_at_most_earned(
            earned in 0i64..10_000,
            paid in 1i64..1_000_000,
            parts in proptest::collection::vec(1i64..400_000, 1..6),
        ) {
            let mut before = 0;
            let mut total = 0;
            for p in parts {
                let r = refund_reversal(earned, paid, before, p);
                prop_assert!(r >= 0);
                total += r;
                before += p;
            }
            prop_assert!(total <= earned);
            let whole = (earned as i128 * before.min(paid) as i128 / paid as i128) as i64;
            prop_assert_eq!(total, whole);
        }
    }
}
