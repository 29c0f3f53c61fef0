//! Property tests: arbitrary mutations of valid webhooks never panic the decoder, and whatever
//! still decodes is a well-formed changelog that the pipeline handles without panicking.

use std::sync::Arc;

use integration_jira::JiraDecoder;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use thirdparty_core::{Changelog, Decoder, Payload};

use crate::support::*;

/// Keys and strings the decoder cares about, so mutations hit interesting spots often.
const KEYS: [&str; 20] = [
    "orgId",
    "integration",
    "jiraAccountId",
    "receivedAt",
    "webhook",
    "webhookEvent",
    "timestamp",
    "issue",
    "id",
    "key",
    "fields",
    "project",
    "issuetype",
    "changelog",
    "items",
    "fieldId",
    "field",
    "from",
    "toString",
    "comment",
];
const STRINGS: [&str; 12] = [
    "jira:issue_updated",
    "jira:issue_created",
    "comment_created",
    "jira:issue_deleted",
    "customfield_10015",
    "Status",
    "duedate",
    "2024-10-08T16:38:03.790+0800",
    "2024-06-30",
    "",
    " ",
    "\u{0}",
];

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(&STRINGS[..]).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(&KEYS[..]), inner), 0..4).prop_map(
                |entries| {
                    Value::Object(
                        entries
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect::<Map<String, Value>>(),
                    )
                }
            ),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, Value),
    Remove(usize),
    Insert(usize, &'static str, Value),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), arb_json()).prop_map(|(at, v)| Mutation::Replace(at, v)),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), prop::sample::select(&KEYS[..]), arb_json())
            .prop_map(|(at, k, v)| Mutation::Insert(at, k, v)),
    ]
}

fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(v, p, out);
            }
        }
        _ => {}
    }
}

fn apply(doc: &mut Value, mutation: &Mutation) {
    let mut all = vec![String::new()];
    pointers(doc, String::new(), &mut all);
    let pick = |at: usize| all[at % all.len()].clone();
    match mutation {
        Mutation::Replace(at, v) => {
            if let Some(slot) = doc.pointer_mut(&pick(*at)) {
                *slot = v.clone();
            }
        }
        Mutation::Remove(at) => {
            let pointer = pick(*at);
            if let Some((parent, key)) = pointer.rsplit_once('/') {
                let key = key.replace("~1", "/").replace("~0", "~");
                match doc.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.remove(&key);
                    }
                    Some(Value::Array(items)) => {
                        if let Ok(i) = key.parse::<usize>()
                            && i < items.len()
                        {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
        }
        Mutation::Insert(at, key, v) => {
            if let Some(Value::Object(map)) = doc.pointer_mut(&pick(*at)) {
                map.insert((*key).to_owned(), v.clone());
            }
        }
    }
}

fn mutated(fixture_index: usize, mutations: &[Mutation], cut: Option<usize>) -> Vec<u8> {
    let mut doc = fixture_json(FIXTURES[fixture_index % FIXTURES.len()]);
    for m in mutations {
        apply(&mut doc, m);
    }
    let mut bytes = serde_json::to_vec(&doc).unwrap();
    if let Some(cut) = cut {
        bytes.truncate(cut % (bytes.len() + 1));
    }
    bytes
}

fn check_well_formed(changelogs: &[Changelog]) {
    for c in changelogs {
        assert_eq!(c.integration, "jira");
        assert!(c.org_id > 0);
        assert!(!c.third_party_id.trim().is_empty());
        assert!(!c.changelog_type.name().ends_with("unsupported_"));
        let json = serde_json::to_value(c).unwrap();
        let mut back: Changelog = serde_json::from_value(json).unwrap();
        // The site is not part of the JSON form (metadata `account_id` names it).
        assert_eq!(back.metadata_value("account_id"), Some(c.site.as_str()));
        back.site.clone_from(&c.site);
        assert_eq!(&back, c);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_webhooks_never_panic_the_decoder(
        fixture_index in any::<usize>(),
        mutations in prop::collection::vec(arb_mutation(), 1..6),
        cut in prop::option::weighted(0.2, any::<usize>()),
    ) {
        let bytes = mutated(fixture_index, &mutations, cut);
        if let Ok(changelogs) = JiraDecoder::new().decode(&bytes) {
            check_well_formed(&changelogs);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = JiraDecoder::new().decode(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn mutated_webhooks_never_panic_the_pipeline(
        fixture_index in any::<usize>(),
        mutations in prop::collection::vec(arb_mutation(), 1..4),
    ) {
        let bytes = mutated(fixture_index, &mutations, None);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let api = Arc::new(World::seeded().api());
            let pipeline = pipeline(api);
            // Only retry-class errors come back as Err; the in-memory API never fails.
            pipeline.handle(&Payload::new(bytes)).await.unwrap();
        });
    }
}

#[test]
fn the_key_fixture_shapes_survive_a_round_trip() {
    for name in FIXTURES {
        let doc = fixture_json(name);
        assert_eq!(doc["orgId"], json!(ORG), "{name}");
        let changelogs = JiraDecoder::new().decode(&fixture(name)).unwrap();
        check_well_formed(&changelogs);
        assert!(!changelogs.is_empty(), "{name}");
    }
}
