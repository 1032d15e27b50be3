//! Balances and the ledger that explains them.
//!
//! Every change to a balance is a [`Posting`]: signed amounts per bucket, written in the
//! same atomic commit as one ledger entry per changed bucket. So the entries of a bucket
//! always sum to its balance.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::member::MemberId;
use crate::money::{Amount, Currency};

/// The three parts of a balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// Withdrawable.
    Available,
    /// Collected, not yet settled.
    Pending,
    /// In withdrawals being paid out.
    InTransit,
}

impl Bucket {
    pub const ALL: [Bucket; 3] = [Bucket::Available, Bucket::Pending, Bucket::InTransit];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Available => "available",
            Bucket::Pending => "pending",
            Bucket::InTransit => "in_transit",
        }
    }
}

/// What caused a ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryType {
    Collection,
    CollectionSettled,
    Refund,
    Withdrawal,
    WithdrawalPaid,
    /// The fee of a paid withdrawal: its own entry, so that statements show fees on their
    /// own lines (entries written before it carry the fee inside `withdrawal_paid`).
    WithdrawalFee,
    WithdrawalReturned,
    ConversionOut,
    ConversionIn,
    /// The platform's side of the entries written before the books were double-entry
    /// (booked once by the migration run, see `reconciliation`).
    Opening,
}

impl EntryType {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::Collection => "collection",
            EntryType::CollectionSettled => "collection_settled",
            EntryType::Refund => "refund",
            EntryType::Withdrawal => "withdrawal",
            EntryType::WithdrawalPaid => "withdrawal_paid",
            EntryType::WithdrawalFee => "withdrawal_fee",
            EntryType::WithdrawalReturned => "withdrawal_returned",
            EntryType::ConversionOut => "conversion_out",
            EntryType::ConversionIn => "conversion_in",
            EntryType::Opening => "opening",
        }
    }
}

/// One line of the ledger: a signed change to one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// `le_` + a ULID: sorts by creation time.
    pub id: String,
    pub member_id: MemberId,
    pub currency: Currency,
    pub bucket: Bucket,
    pub amount: Amount,
    #[serde(rename = "type")]
    pub entry_type: EntryType,
    /// The collection, refund or withdrawal id that caused it.
    pub reference: String,
    pub created_at: Timestamp,
    /// The ledger transaction (`lt_` + a ULID) this entry is one leg of. Entries written
    /// before the books were double-entry have none (format 1; see `docs/data-model.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
}

/// One currency's balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    pub available: Amount,
    pub pending: Amount,
    pub in_transit: Amount,
}

impl Balance {
    pub fn get(&self, bucket: Bucket) -> Amount {
        match bucket {
            Bucket::Available => self.available,
            Bucket::Pending => self.pending,
            Bucket::InTransit => self.in_transit,
        }
    }

    fn slot(&mut self, bucket: Bucket) -> &mut Amount {
        match bucket {
            Bucket::Available => &mut self.available,
            Bucket::Pending => &mut self.pending,
            Bucket::InTransit => &mut self.in_transit,
        }
    }

    /// Refuses taking more than `available`: `422 insufficient_funds` with what is.
    pub fn require_available(&self, amount: Amount) -> Result<(), crate::error::ApiError> {
        if amount > self.available {
            return Err(crate::error::ApiError::InsufficientFunds {
                available: self.available,
            });
        }
        Ok(())
    }

    /// This balance with the deltas applied, or `None` if a bucket would go negative
    /// or overflow: the rule every store enforces on commit.
    pub fn apply(&self, deltas: &BucketDeltas) -> Option<Balance> {
        let mut next = *self;
        for (bucket, delta) in deltas.iter() {
            let slot = next.slot(bucket);
            *slot = slot.checked_add(delta)?;
            if slot.is_negative() {
                return None;
            }
        }
        Some(next)
    }

    /// This balance and another summed bucket by bucket: a member's balance item and
    /// its pending shards read as the one balance the member sees. `None` on overflow.
    pub fn plus(&self, other: &Balance) -> Option<Balance> {
        Some(Balance {
            available: self.available.checked_add(other.available)?,
            pending: self.pending.checked_add(other.pending)?,
            in_transit: self.in_transit.checked_add(other.in_transit)?,
        })
    }
}

/// Sub-items that hold a member's `pending` money in each currency, next to the balance
/// item (which holds `available` and `in_transit`).
///
/// Why: DynamoDB serves one item at most 1,000 write units a second, and a transactional
/// write costs two. A big seller on a sale day takes thousands of collections a second;
/// were each to add to the one balance item, that seller would be throttled past about
/// 500 a second whatever the table's capacity. A collection only ever *adds* to
/// `pending`, which no withdrawal spends, so `pending` can be spread without giving up
/// any check: each collection adds to the shard its id hashes to, and its refund or
/// settlement takes from that same shard (so a shard can never go below zero while a
/// collection's money is in it). `available` stays on the one balance item, so a
/// withdrawal's `available >= amount` condition remains one exact check on one item.
/// Reads of the account sum the shards: the same one `Query` of the member's partition.
/// Settlement moves many collections in one commit (see `collection::settle_due`), so the
/// balance item takes a few writes a second, not one per collection.
pub const PENDING_SHARDS: u8 = 16;

/// The pending shard a collection's money lives in: a stable hash of its id (FNV-1a), so
/// that the same id always lands on the same shard.
pub fn pending_shard_of(collection_id: &str) -> u8 {
    let hash = collection_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    // The remainder is below PENDING_SHARDS, which fits a u8.
    (hash % u64::from(PENDING_SHARDS)) as u8
}

/// Which item of a member's balance in one currency a write adjusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BalancePart {
    /// The balance item: `available`, `in_transit`, and `pending` from before shards.
    Main,
    /// One pending shard (`0..PENDING_SHARDS`).
    Pending(u8),
}

/// A member's balances in every currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balances {
    pub usd: Balance,
    pub cny: Balance,
}

impl Balances {
    pub fn get(&self, currency: Currency) -> &Balance {
        match currency {
            Currency::Usd => &self.usd,
            Currency::Cny => &self.cny,
        }
    }

    pub fn get_mut(&mut self, currency: Currency) -> &mut Balance {
        match currency {
            Currency::Usd => &mut self.usd,
            Currency::Cny => &mut self.cny,
        }
    }
}

/// Signed changes to the buckets of one balance; zero deltas are left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BucketDeltas(Vec<(Bucket, Amount)>);

impl BucketDeltas {
    /// These deltas and another's, merged per bucket (zeros left out): two postings'
    /// adjustments of one item in one commit. `None` on overflow.
    pub fn merged(&self, other: &BucketDeltas) -> Option<BucketDeltas> {
        let mut merged = self.0.clone();
        for (bucket, amount) in other.iter() {
            match merged.iter_mut().find(|(b, _)| *b == bucket) {
                Some((_, total)) => *total = total.checked_add(amount)?,
                None => merged.push((bucket, amount)),
            }
        }
        merged.retain(|(_, a)| !a.is_zero());
        Some(BucketDeltas(merged))
    }

    pub fn iter(&self) -> impl Iterator<Item = (Bucket, Amount)> + '_ {
        self.0.iter().copied()
    }

    pub fn get(&self, bucket: Bucket) -> Amount {
        self.0
            .iter()
            .find(|(b, _)| *b == bucket)
            .map_or(Amount::ZERO, |(_, a)| *a)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A balance change with its reason: becomes one balance write and one ledger entry for
/// each bucket it moves, all in one commit.
#[derive(Debug, Clone)]
pub struct Posting {
    pub member_id: MemberId,
    pub currency: Currency,
    pub entry_type: EntryType,
    pub reference: String,
    /// Signed changes, each with the type its ledger entry carries (the posting's own,
    /// unless a move is set apart, as a withdrawal's fee is).
    pub moves: Vec<(Bucket, Amount, EntryType)>,
    /// The pending shard its `pending` moves adjust (a collection's); `None`: the balance
    /// item, as for collections made before shards.
    pub pending_shard: Option<u8>,
}

impl Posting {
    pub fn new(member_id: &MemberId, currency: Currency, entry_type: EntryType, reference: &str) -> Posting {
        Posting {
            member_id: member_id.clone(),
            currency,
            entry_type,
            reference: reference.to_owned(),
            moves: Vec::new(),
            pending_shard: None,
        }
    }

    /// Puts the posting's `pending` moves on a collection's pending shard.
    pub fn pending_in(mut self, shard: Option<u8>) -> Posting {
        self.pending_shard = shard;
        self
    }

    /// Adds a signed change to one bucket.
    pub fn change(self, bucket: Bucket, amount: Amount) -> Posting {
        let entry_type = self.entry_type;
        self.change_as(bucket, amount, entry_type)
    }

    /// Adds a signed change to one bucket whose entry has its own type (a fee).
    pub fn change_as(mut self, bucket: Bucket, amount: Amount, entry_type: EntryType) -> Posting {
        self.moves.push((bucket, amount, entry_type));
        self
    }

    /// The posting's moves merged per bucket, zeros left out: one balance adjustment.
    #[expect(
        clippy::expect_used,
        reason = "a posting's few request amounts cannot overflow 10^28"
    )]
    pub fn deltas(&self) -> BucketDeltas {
        let mut merged: Vec<(Bucket, Amount)> = Vec::new();
        for (bucket, amount, _) in &self.moves {
            match merged.iter_mut().find(|(b, _)| b == bucket) {
                // Request amounts are below 10^12 and a posting has a few moves: their sum
                // is far inside a 96-bit decimal, so overflow here is a bug, not data.
                Some((_, total)) => *total = total.checked_add(*amount).expect("posting sums stay far below 10^28"),
                None => merged.push((*bucket, *amount)),
            }
        }
        merged.retain(|(_, a)| !a.is_zero());
        BucketDeltas(merged)
    }

    /// The posting's balance adjustments, per item: its `pending` on its pending shard
    /// when it has one, everything else (or everything) on the balance item. Empty parts
    /// are left out, but a posting always adjusts at least one item.
    pub fn parts(&self) -> Vec<(BalancePart, BucketDeltas)> {
        let deltas = self.deltas();
        let Some(shard) = self.pending_shard else {
            return vec![(BalancePart::Main, deltas)];
        };
        let (pending, main): (Vec<_>, Vec<_>) = deltas.0.into_iter().partition(|(b, _)| *b == Bucket::Pending);
        let mut parts = Vec::new();
        if !main.is_empty() {
            parts.push((BalancePart::Main, BucketDeltas(main)));
        }
        if !pending.is_empty() || parts.is_empty() {
            parts.push((BalancePart::Pending(shard), BucketDeltas(pending)));
        }
        parts
    }

    /// One ledger entry per non-zero move, each with its own id.
    pub fn entries(&self, now: Timestamp) -> Vec<LedgerEntry> {
        self.moves
            .iter()
            .filter(|(_, amount, _)| !amount.is_zero())
            .map(|(bucket, amount, entry_type)| LedgerEntry {
                id: format!("le_{}", crate::ids::ulid_at(now)),
                member_id: self.member_id.clone(),
                currency: self.currency,
                bucket: *bucket,
                amount: *amount,
                entry_type: *entry_type,
                reference: self.reference.clone(),
                created_at: now,
                transaction: None,
            })
            .collect()
    }
}

/// The platform's own accounts, one of each per currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformAccount {
    /// Money that came in from orders or went out to banks: negative while the platform
    /// holds sellers' money.
    Clearing,
    /// Withdrawal fees earned (when a withdrawal is paid).
    FeeRevenue,
    /// What conversions and cross-currency payouts bought (positive) and sold (negative).
    FxPosition,
}

impl PlatformAccount {
    pub const ALL: [PlatformAccount; 3] = [
        PlatformAccount::Clearing,
        PlatformAccount::FeeRevenue,
        PlatformAccount::FxPosition,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PlatformAccount::Clearing => "clearing",
            PlatformAccount::FeeRevenue => "fee_revenue",
            PlatformAccount::FxPosition => "fx_position",
        }
    }

    /// The account an [`as_str`](Self::as_str) name stands for.
    pub fn parse(name: &str) -> Option<PlatformAccount> {
        PlatformAccount::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// Sub-items of each platform account. Every member's movements write the platform's
/// accounts; spread over this many items, each takes a sixteenth of the writes, so no
/// single item nears DynamoDB's 1,000 write units per second. Reads sum the shards.
pub const PLATFORM_SHARDS: u32 = 16;

/// One sub-item of a platform account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlatformShard {
    pub account: PlatformAccount,
    pub currency: Currency,
    pub shard: u32,
}

impl PlatformShard {
    /// Every shard of every platform account, in a fixed order.
    pub fn all() -> impl Iterator<Item = PlatformShard> {
        PlatformAccount::ALL.into_iter().flat_map(|account| {
            Currency::ALL.into_iter().flat_map(move |currency| {
                (0..PLATFORM_SHARDS).map(move |shard| PlatformShard {
                    account,
                    currency,
                    shard,
                })
            })
        })
    }

    /// `account/currency/shard`: the shard's name in keys and reports.
    pub fn name(&self) -> String {
        format!("{}#{}#{:02}", self.account.as_str(), self.currency, self.shard)
    }
}

/// One line of a platform account's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformEntry {
    pub id: String,
    pub account: PlatformAccount,
    pub currency: Currency,
    pub shard: u32,
    pub amount: Amount,
    #[serde(rename = "type")]
    pub entry_type: EntryType,
    pub reference: String,
    /// The member whose movement this is the platform's side of.
    pub member_id: MemberId,
    pub transaction: String,
    pub created_at: Timestamp,
}

impl PlatformEntry {
    pub fn shard(&self) -> PlatformShard {
        PlatformShard {
            account: self.account,
            currency: self.currency,
            shard: self.shard,
        }
    }
}

/// One movement of money: the member's postings and the platform's legs, which together
/// sum to zero in every currency. It becomes one commit (see `store::Write::transaction`),
/// so the books balance after every commit, not only eventually.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// `lt_` + a ULID: names the movement in every entry it writes.
    pub id: String,
    pub member_id: MemberId,
    pub reference: String,
    pub postings: Vec<Posting>,
    pub platform: Vec<(PlatformAccount, Currency, Amount, EntryType)>,
    /// The event the movement emits: written in the same commit (the outbox).
    pub event: Option<crate::events::MovementEvent>,
}

/// A transaction whose legs do not sum to zero: a bug in the code that built it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transaction {reference} does not balance in {currency}: its legs sum to {sum}")]
pub struct Unbalanced {
    pub reference: String,
    pub currency: Currency,
    pub sum: Amount,
}

impl Transaction {
    pub fn new(member_id: &MemberId, reference: &str, now: Timestamp) -> Transaction {
        Transaction {
            id: format!("lt_{}", crate::ids::ulid_at(now)),
            member_id: member_id.clone(),
            reference: reference.to_owned(),
            postings: Vec::new(),
            platform: Vec::new(),
            event: None,
        }
    }

    /// Sets the event the movement emits (see `events`).
    pub fn event(mut self, event_type: crate::events::EventType, detail: serde_json::Value) -> Transaction {
        self.event = Some(crate::events::MovementEvent { event_type, detail });
        self
    }

    /// Adds the member's side in one currency.
    pub fn member(mut self, posting: Posting) -> Transaction {
        self.postings.push(posting);
        self
    }

    /// Adds a signed amount to one of the platform's accounts.
    pub fn platform(
        mut self,
        account: PlatformAccount,
        currency: Currency,
        amount: Amount,
        entry_type: EntryType,
    ) -> Transaction {
        self.platform.push((account, currency, amount, entry_type));
        self
    }

    /// The sum of every leg in `currency`.
    pub fn sum(&self, currency: Currency) -> Option<Amount> {
        let member = self
            .postings
            .iter()
            .filter(|p| p.currency == currency)
            .flat_map(|p| p.moves.iter().map(|(_, a, _)| *a));
        let platform = self
            .platform
            .iter()
            .filter(|(_, c, _, _)| *c == currency)
            .map(|(_, _, a, _)| *a);
        member
            .chain(platform)
            .try_fold(Amount::ZERO, |total, amount| total.checked_add(amount))
    }

    /// Refuses a transaction that does not sum to zero in every currency.
    pub fn check_balanced(&self) -> Result<(), Unbalanced> {
        for currency in Currency::ALL {
            let sum = self.sum(currency);
            if sum != Some(Amount::ZERO) {
                return Err(Unbalanced {
                    reference: self.reference.clone(),
                    currency,
                    sum: sum.unwrap_or(Amount::ZERO),
                });
            }
        }
        Ok(())
    }

    /// The shard this transaction's platform legs go to: spread by the transaction's own
    /// id (random), not the member's, so that one busy seller spreads too.
    pub fn shard(&self) -> u32 {
        crate::ids::stable_hash(&self.id) % PLATFORM_SHARDS
    }

    /// The platform's entries of this transaction, one per non-zero leg.
    pub fn platform_entries(&self, now: Timestamp) -> Vec<PlatformEntry> {
        let shard = self.shard();
        self.platform
            .iter()
            .filter(|(_, _, amount, _)| !amount.is_zero())
            .map(|(account, currency, amount, entry_type)| PlatformEntry {
                id: format!("le_{}", crate::ids::ulid_at(now)),
                account: *account,
                currency: *currency,
                shard,
                amount: *amount,
                entry_type: *entry_type,
                reference: self.reference.clone(),
                member_id: self.member_id.clone(),
                transaction: self.id.clone(),
                created_at: now,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(text: &str) -> Amount {
        Amount::parse_stored(text).unwrap()
    }

    #[test]
    fn applying_deltas_refuses_any_negative_bucket() {
        let balance = Balance {
            available: amount("10"),
            ..Balance::default()
        };
        let ok = BucketDeltas(vec![
            (Bucket::Available, amount("-10")),
            (Bucket::InTransit, amount("10")),
        ]);
        assert_eq!(balance.apply(&ok).unwrap().in_transit, amount("10"));
        let overdraw = BucketDeltas(vec![(Bucket::Available, amount("-10.01"))]);
        assert_eq!(balance.apply(&overdraw), None);
    }

    #[test]
    fn a_posting_moves_one_balance_and_makes_one_entry_per_bucket() {
        let member = MemberId::parse("m1").unwrap();
        let posting = Posting::new(&member, Currency::Usd, EntryType::Withdrawal, "wd_1")
            .change(Bucket::Available, amount("-5"))
            .change(Bucket::InTransit, amount("5"));
        assert_eq!(posting.deltas().get(Bucket::InTransit), amount("5"));
        assert_eq!(posting.entries(Timestamp::from_unix_millis(0)).len(), 2);
    }

    #[test]
    fn buckets_and_entry_types_have_their_contract_names() {
        let buckets: Vec<&str> = Bucket::ALL.iter().map(|b| b.as_str()).collect();
        assert_eq!(buckets, ["available", "pending", "in_transit"]);
        for (entry_type, name) in [
            (EntryType::Collection, "collection"),
            (EntryType::CollectionSettled, "collection_settled"),
            (EntryType::Refund, "refund"),
            (EntryType::Withdrawal, "withdrawal"),
            (EntryType::WithdrawalPaid, "withdrawal_paid"),
            (EntryType::WithdrawalFee, "withdrawal_fee"),
            (EntryType::WithdrawalReturned, "withdrawal_returned"),
        ] {
            assert_eq!(entry_type.as_str(), name);
            assert_eq!(serde_json::to_value(entry_type).unwrap(), name, "stored as its name");
        }
    }

    #[test]
    fn each_bucket_and_currency_is_its_own_slot() {
        let balance = Balance {
            available: amount("1"),
            pending: amount("2"),
            in_transit: amount("3"),
        };
        let got: Vec<String> = Bucket::ALL.iter().map(|b| balance.get(*b).to_string()).collect();
        assert_eq!(got, ["1.00", "2.00", "3.00"]);
        for bucket in Bucket::ALL {
            let next = balance.apply(&BucketDeltas(vec![(bucket, amount("0.50"))])).unwrap();
            for other in Bucket::ALL {
                let expected = if other == bucket {
                    balance.get(other).checked_add(amount("0.50")).unwrap()
                } else {
                    balance.get(other)
                };
                assert_eq!(next.get(other), expected, "{bucket:?} moved {other:?}");
            }
        }
        let mut balances = Balances::default();
        balances.get_mut(Currency::Cny).pending = amount("7");
        assert_eq!(balances.get(Currency::Cny).pending, amount("7"));
        assert_eq!(balances.cny.pending, amount("7"));
        assert_eq!(balances.get(Currency::Usd), &Balance::default());
        balances.get_mut(Currency::Usd).available = amount("9");
        assert_eq!(balances.usd.available, amount("9"));
        assert_eq!(balances.get(Currency::Usd).available, amount("9"));
    }

    #[test]
    fn applying_deltas_refuses_overflow_and_a_bucket_left_negative_by_the_last_move() {
        let huge = Balance {
            pending: Amount::parse_stored("79228162514264337593543950335").unwrap(),
            ..Balance::default()
        };
        assert_eq!(huge.apply(&BucketDeltas(vec![(Bucket::Pending, amount("1"))])), None);
        let balance = Balance {
            pending: amount("5"),
            ..Balance::default()
        };
        let settle = BucketDeltas(vec![(Bucket::Pending, amount("-5")), (Bucket::Available, amount("5"))]);
        assert_eq!(
            balance.apply(&settle).map(|b| (b.available, b.pending)),
            Some((amount("5"), Amount::ZERO))
        );
        let short = BucketDeltas(vec![
            (Bucket::Available, amount("1")),
            (Bucket::Pending, amount("-5.01")),
        ]);
        assert_eq!(balance.apply(&short), None);
    }

    #[test]
    fn a_posting_merges_moves_per_bucket_and_skips_zero_entries() {
        let member = MemberId::parse("m1").unwrap();
        let now = Timestamp::from_unix_millis(1_000);
        let posting = Posting::new(&member, Currency::Cny, EntryType::Refund, "ref_1")
            .change(Bucket::Pending, amount("-2"))
            .change(Bucket::Pending, amount("-3"))
            .change(Bucket::Available, Amount::ZERO)
            .change(Bucket::InTransit, amount("1"))
            .change(Bucket::InTransit, amount("-1"));
        let deltas = posting.deltas();
        // One delta per bucket; buckets that net to zero are left out.
        assert_eq!(deltas.iter().collect::<Vec<_>>(), vec![(Bucket::Pending, amount("-5"))]);
        assert_eq!(deltas.get(Bucket::Pending), amount("-5"));
        assert_eq!(deltas.get(Bucket::InTransit), Amount::ZERO);
        assert!(!deltas.is_empty());
        assert!(BucketDeltas::default().is_empty());
        // One entry per non-zero move, each carrying the posting's reason.
        let entries = posting.entries(now);
        let moves: Vec<(Bucket, String)> = entries.iter().map(|e| (e.bucket, e.amount.to_string())).collect();
        assert_eq!(
            moves,
            [
                (Bucket::Pending, "-2.00".to_owned()),
                (Bucket::Pending, "-3.00".to_owned()),
                (Bucket::InTransit, "1.00".to_owned()),
                (Bucket::InTransit, "-1.00".to_owned()),
            ]
        );
        for entry in &entries {
            assert_eq!(
                (
                    &entry.member_id,
                    entry.currency,
                    entry.entry_type,
                    entry.reference.as_str(),
                    entry.created_at
                ),
                (&member, Currency::Cny, EntryType::Refund, "ref_1", now)
            );
            assert!(entry.id.starts_with("le_"), "{}", entry.id);
        }
    }
}
