//! What DynamoDB calls cost: an SDK interceptor on the real client that counts calls by
//! operation and totals the read and write request units each would consume, by
//! DynamoDB's published rules, from the items it reads and the items it writes as they
//! were before and after the call.
//!
//! The emulator's own `ConsumedCapacity` cannot be used: moto returns no figure for
//! `TransactWriteItems`, charges every `PutItem` 1 unit whatever the item's size, every
//! consistent `GetItem` half a unit, and ignores index writes. The rules applied here
//! (docs/PERFORMANCE.md cites the pages):
//!
//! - an item's size is the sum of its attribute names' and values' lengths: a string its
//!   UTF-8 bytes, a number 1 byte per two significant digits plus 1, a boolean or null
//!   1, a list or map 3 plus its elements with 1 byte each;
//! - a read costs 1 unit per 4 KB, rounded up per item (`GetItem`, each key of a
//!   `BatchGetItem`) or over the sum of the items (`Query`), at least 1; half that when
//!   eventually consistent; twice that in a `TransactGetItems`;
//! - a write costs 1 unit per 1 KB of the larger of the item before and after
//!   (`PutItem`, `UpdateItem`, `DeleteItem`), at least 1; twice that per item in a
//!   `TransactWriteItems` (prepare and commit), condition checks included;
//! - each global secondary index whose keys the item has, before or after, takes a
//!   standard write of the item's size (all attributes are projected): one when the item
//!   enters, leaves or changes in place, two when its index key changes.
//!
//! Units are kept in halves, so that sums are exact.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation as op;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

type Item = HashMap<String, AttributeValue>;

/// The indexes' key attributes, as `DynamoStore::create_table` declares them.
const INDEX_KEYS: [(&str, &str); 2] = [("GSI1PK", "GSI1SK"), ("GSI2PK", "GSI2SK")];

/// What a run of calls made and consumed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Calls by operation name.
    pub calls: BTreeMap<String, usize>,
    /// The items of each `TransactWriteItems`, in order.
    pub transaction_items: Vec<usize>,
    /// Each plain `PutItem` / `UpdateItem` / `DeleteItem`: its IAM action and the
    /// partition key it wrote.
    pub plain_writes: Vec<(String, String)>,
    /// Read request units, in halves.
    pub read_halves: u64,
    /// Write request units (the table's and its indexes').
    pub write_units: u64,
    /// Of those, the table's units of the plain writes: what sending them as one-item
    /// transactions would add again.
    pub plain_write_units: u64,
}

impl Usage {
    pub fn calls_total(&self) -> usize {
        self.calls.values().sum()
    }

    /// Read request units, as DynamoDB prints them (`1.5`).
    pub fn rcu(&self) -> String {
        if self.read_halves % 2 == 0 {
            (self.read_halves / 2).to_string()
        } else {
            format!("{}.5", self.read_halves / 2)
        }
    }
}

/// The size DynamoDB bills for an item.
pub fn item_size(item: &Item) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> u64 {
    match value {
        AttributeValue::S(text) => text.len() as u64,
        AttributeValue::N(number) => number_size(number),
        AttributeValue::B(blob) => blob.as_ref().len() as u64,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(values) => 3 + values.iter().map(|v| 1 + value_size(v)).sum::<u64>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() as u64 + value_size(v)).sum::<u64>(),
        AttributeValue::Ss(texts) => texts.iter().map(|t| t.len() as u64).sum(),
        AttributeValue::Ns(numbers) => numbers.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(blobs) => blobs.iter().map(|b| b.as_ref().len() as u64).sum(),
        _ => 0,
    }
}

/// 1 byte per two significant digits, plus 1 (leading and trailing zeros trimmed).
fn number_size(number: &str) -> u64 {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1) as u64;
    significant.div_ceil(2) + 1
}

fn units(size: u64, per: u64) -> u64 {
    size.div_ceil(per).max(1)
}

/// The standard index writes an item's change takes.
fn index_writes(before: Option<&Item>, after: Option<&Item>) -> u64 {
    let key =
        |item: Option<&Item>, (pk, sk): (&str, &str)| item.and_then(|i| Some((i.get(pk)?.clone(), i.get(sk)?.clone())));
    let size = |item: Option<&Item>| units(item.map_or(0, item_size), 1024);
    INDEX_KEYS
        .iter()
        .map(|names| match (key(before, *names), key(after, *names)) {
            (None, None) => 0,
            (Some(_), None) => size(before),
            (None, Some(_)) => size(after),
            (Some(old), Some(new)) if old == new => size(before).max(size(after)),
            (Some(_), Some(_)) => size(before) + size(after),
        })
        .sum()
}

/// The primary key of an item.
fn key_of(item: &Item) -> Item {
    ["PK", "SK"]
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), item.get(*name)?.clone())))
        .collect()
}

fn partition(key: &Item) -> String {
    match key.get("PK") {
        Some(AttributeValue::S(pk)) => pk.clone(),
        _ => String::new(),
    }
}

/// Keys to read, and where to send the items found.
type ProbeRequest = (Vec<Item>, mpsc::Sender<Vec<Option<Item>>>);

/// Reads items outside the metered client, on a thread of its own (the interceptor's
/// hooks are synchronous): what a write's item was before it and is after it.
#[derive(Debug, Clone)]
struct Prober {
    requests: mpsc::Sender<ProbeRequest>,
}

impl Prober {
    fn start(config: &aws_config::SdkConfig, table: String) -> Prober {
        let (requests, inbox) = mpsc::channel::<ProbeRequest>();
        let client = aws_sdk_dynamodb::Client::new(config);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            while let Ok((keys, reply)) = inbox.recv() {
                let items = runtime.block_on(async {
                    let mut items = Vec::new();
                    for key in keys {
                        let item = client
                            .get_item()
                            .table_name(&table)
                            .set_key(Some(key))
                            .consistent_read(true)
                            .send()
                            .await
                            .expect("probe read")
                            .item;
                        items.push(item);
                    }
                    items
                });
                let _ = reply.send(items);
            }
        });
        Prober { requests }
    }

    fn items(&self, keys: Vec<Item>) -> Vec<Option<Item>> {
        if keys.is_empty() {
            return Vec::new();
        }
        let (reply, answer) = mpsc::channel();
        self.requests.send((keys, reply)).expect("the prober runs");
        answer.recv().expect("the prober answers")
    }
}

/// What the interceptor notes about a call before it is sent, for after it returns.
#[derive(Debug, Clone)]
enum Pending {
    /// Writes of these items (keys), transactional or plain, with their before-images.
    Write {
        action: &'static str,
        transactional: bool,
        keys: Vec<Item>,
        before: Vec<Option<Item>>,
    },
    Read {
        kind: ReadKind,
        consistent: bool,
        /// Keys asked for (`BatchGetItem`, `TransactGetItems`).
        asked: usize,
        /// A projection: the full items are read back to size them.
        projected: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum ReadKind {
    Get,
    Query,
    BatchGet,
    TransactGet,
}

impl Storable for Pending {
    type Storer = StoreReplace<Pending>;
}

/// Counts calls and totals capacity units (see the module's rules). Clones share totals.
#[derive(Debug, Clone)]
pub struct Meter {
    usage: Arc<Mutex<Usage>>,
    prober: Prober,
}

impl Meter {
    /// A meter for calls to `table`, reading items back through `config`'s endpoint.
    pub fn new(config: &aws_config::SdkConfig, table: &str) -> Meter {
        Meter {
            usage: Arc::default(),
            prober: Prober::start(config, table.to_owned()),
        }
    }

    /// What was used since the last `take`.
    pub fn take(&self) -> Usage {
        std::mem::take(&mut *self.usage.lock().unwrap())
    }

    fn usage(&self) -> std::sync::MutexGuard<'_, Usage> {
        self.usage.lock().unwrap()
    }

    fn pending(&self, input: &aws_smithy_runtime_api::client::interceptors::context::Input) -> Option<Pending> {
        let write = |action, transactional, keys: Vec<Item>| {
            let before = self.prober.items(keys.clone());
            Some(Pending::Write {
                action,
                transactional,
                keys,
                before,
            })
        };
        if let Some(put) = input.downcast_ref::<op::put_item::PutItemInput>() {
            return write("PutItem", false, vec![key_of(put.item()?)]);
        }
        if let Some(update) = input.downcast_ref::<op::update_item::UpdateItemInput>() {
            return write("UpdateItem", false, vec![update.key()?.clone()]);
        }
        if let Some(delete) = input.downcast_ref::<op::delete_item::DeleteItemInput>() {
            return write("DeleteItem", false, vec![delete.key()?.clone()]);
        }
        if let Some(transaction) = input.downcast_ref::<op::transact_write_items::TransactWriteItemsInput>() {
            self.usage().transaction_items.push(transaction.transact_items().len());
            let keys = transaction
                .transact_items()
                .iter()
                .filter_map(|item| {
                    item.put()
                        .map(|p| key_of(&p.item))
                        .or_else(|| item.update().map(|u| u.key.clone()))
                        .or_else(|| item.delete().map(|d| d.key.clone()))
                        .or_else(|| item.condition_check().map(|c| c.key.clone()))
                })
                .collect();
            return write("TransactWriteItems", true, keys);
        }
        let read = |kind, consistent: Option<bool>, asked, projected| {
            Some(Pending::Read {
                kind,
                consistent: consistent.unwrap_or(false),
                asked,
                projected,
            })
        };
        if let Some(get) = input.downcast_ref::<op::get_item::GetItemInput>() {
            return read(
                ReadKind::Get,
                get.consistent_read(),
                1,
                get.projection_expression().is_some(),
            );
        }
        if let Some(query) = input.downcast_ref::<op::query::QueryInput>() {
            let projected = query.projection_expression().is_some() || query.select().is_some();
            return read(ReadKind::Query, query.consistent_read(), 0, projected);
        }
        if let Some(batch) = input.downcast_ref::<op::batch_get_item::BatchGetItemInput>() {
            let tables = batch.request_items()?;
            let asked = tables.values().map(|t| t.keys().len()).sum();
            let consistent = tables.values().all(|t| t.consistent_read() == Some(true));
            let projected = tables.values().any(|t| t.projection_expression().is_some());
            return read(ReadKind::BatchGet, Some(consistent), asked, projected);
        }
        if let Some(transaction) = input.downcast_ref::<op::transact_get_items::TransactGetItemsInput>() {
            let projected = transaction
                .transact_items()
                .iter()
                .any(|i| i.get().is_some_and(|g| g.projection_expression().is_some()));
            return read(
                ReadKind::TransactGet,
                Some(true),
                transaction.transact_items().len(),
                projected,
            );
        }
        None
    }

    /// The items a read returned, read back whole when it projected only some attributes
    /// (DynamoDB bills the whole item).
    fn whole(&self, items: Vec<&Item>, projected: bool) -> Vec<Item> {
        if projected {
            self.prober
                .items(items.iter().map(|i| key_of(i)).collect())
                .into_iter()
                .flatten()
                .collect()
        } else {
            items.into_iter().cloned().collect()
        }
    }

    fn settle(&self, pending: Pending, output: Option<&aws_smithy_runtime_api::client::interceptors::context::Output>) {
        match pending {
            Pending::Write {
                action,
                transactional,
                keys,
                before,
            } => {
                // A refused write leaves the item as it was; it is billed all the same.
                let after = if output.is_some() {
                    self.prober.items(keys.clone())
                } else {
                    before.clone()
                };
                let mut table_units = 0;
                let mut index_units = 0;
                for (before, after) in before.iter().zip(&after) {
                    let size = before
                        .as_ref()
                        .map_or(0, item_size)
                        .max(after.as_ref().map_or(0, item_size));
                    table_units += units(size, 1024) * if transactional { 2 } else { 1 };
                    index_units += index_writes(before.as_ref(), after.as_ref());
                }
                let mut usage = self.usage();
                usage.write_units += table_units + index_units;
                if !transactional {
                    usage.plain_write_units += table_units;
                    usage
                        .plain_writes
                        .push((format!("dynamodb:{action}"), partition(&keys[0])));
                }
            }
            Pending::Read {
                kind,
                consistent,
                asked,
                projected,
            } => {
                let Some(output) = output else { return };
                let halves = |units: u64| if consistent { 2 * units } else { units };
                let read_halves = match kind {
                    ReadKind::Get => {
                        let got = output.downcast_ref::<op::get_item::GetItemOutput>();
                        let items = self.whole(got.and_then(|o| o.item()).into_iter().collect(), projected);
                        halves(units(items.iter().map(item_size).sum(), 4096))
                    }
                    ReadKind::Query => {
                        let got = output.downcast_ref::<op::query::QueryOutput>();
                        let items = self.whole(got.map(|o| o.items().iter().collect()).unwrap_or_default(), projected);
                        halves(units(items.iter().map(item_size).sum(), 4096))
                    }
                    ReadKind::BatchGet => {
                        let got = output.downcast_ref::<op::batch_get_item::BatchGetItemOutput>();
                        let returned: Vec<&Item> = got
                            .and_then(|o| o.responses())
                            .map(|tables| tables.values().flatten().collect())
                            .unwrap_or_default();
                        let missing = asked.saturating_sub(returned.len()) as u64;
                        let items = self.whole(returned, projected);
                        halves(items.iter().map(|i| units(item_size(i), 4096)).sum::<u64>() + missing)
                    }
                    ReadKind::TransactGet => {
                        let got = output.downcast_ref::<op::transact_get_items::TransactGetItemsOutput>();
                        let returned: Vec<&Item> = got
                            .map(|o| o.responses().iter().filter_map(|r| r.item()).collect())
                            .unwrap_or_default();
                        let missing = asked.saturating_sub(returned.len()) as u64;
                        let items = self.whole(returned, projected);
                        // Twice a consistent read, per item (a missing one at the least).
                        2 * halves(items.iter().map(|i| units(item_size(i), 4096)).sum::<u64>() + missing)
                    }
                };
                self.usage().read_halves += read_halves;
            }
        }
    }
}

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "Meter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = operation_name(context.input());
        *self.usage().calls.entry(name.to_owned()).or_default() += 1;
        if let Some(pending) = self.pending(context.input()) {
            cfg.interceptor_state().store_put(pending);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(pending) = cfg.load::<Pending>().cloned() {
            let output = context.output_or_error().and_then(Result::ok);
            self.settle(pending, output);
        }
        Ok(())
    }
}

/// The operation an input belongs to.
pub fn operation_name(input: &aws_smithy_runtime_api::client::interceptors::context::Input) -> &'static str {
    macro_rules! named {
        ($($module:ident :: $input:ident => $name:literal),* $(,)?) => {
            $(if input.downcast_ref::<op::$module::$input>().is_some() { return $name; })*
        };
    }
    named!(
        query::QueryInput => "Query",
        get_item::GetItemInput => "GetItem",
        put_item::PutItemInput => "PutItem",
        update_item::UpdateItemInput => "UpdateItem",
        delete_item::DeleteItemInput => "DeleteItem",
        scan::ScanInput => "Scan",
        batch_get_item::BatchGetItemInput => "BatchGetItem",
        transact_get_items::TransactGetItemsInput => "TransactGetItems",
        transact_write_items::TransactWriteItemsInput => "TransactWriteItems",
    );
    "other"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_owned())
    }

    /// The sizes DynamoDB's documentation states: names and values in bytes, numbers by
    /// significant digits.
    #[test]
    fn item_sizes_follow_the_documented_rules() {
        assert_eq!(number_size("0"), 2);
        assert_eq!(number_size("12345"), 4);
        assert_eq!(number_size("-1200.500"), 4, "12005: three bytes, plus one");
        let item = Item::from([
            ("PK".to_owned(), s("MEMBER#m-1")),
            ("n".to_owned(), AttributeValue::N("100".to_owned())),
            ("ok".to_owned(), AttributeValue::Bool(true)),
            ("l".to_owned(), AttributeValue::L(vec![s("ab"), s("c")])),
        ]);
        assert_eq!(
            item_size(&item),
            (2 + 10) + (1 + 2) + (2 + 1) + (1 + 3 + (1 + 2) + (1 + 1))
        );
    }

    #[test]
    fn an_index_key_that_changes_is_a_delete_and_a_put() {
        let indexed = |sk: &str| Item::from([("GSI2PK".to_owned(), s("DUE#1")), ("GSI2SK".to_owned(), s(sk))]);
        assert_eq!(index_writes(None, Some(&indexed("a"))), 1);
        assert_eq!(index_writes(Some(&indexed("a")), Some(&indexed("a"))), 1);
        assert_eq!(index_writes(Some(&indexed("a")), Some(&indexed("b"))), 2);
        assert_eq!(index_writes(Some(&indexed("a")), Some(&Item::new())), 1);
        assert_eq!(index_writes(None, None), 0);
    }
}
