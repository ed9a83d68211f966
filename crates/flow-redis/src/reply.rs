//! Reading Redis replies (RESP2 shapes) into entries.

use redis::Value;

use crate::{StreamError, StreamId};

/// One stream entry: its id and its field-value pairs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) id: StreamId,
    pub(crate) fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Entry {
    /// The value of field `name`, if the entry has it.
    pub(crate) fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

fn bad(what: &'static str, v: &Value) -> StreamError {
    StreamError::BadReply {
        what,
        reply: format!("{v:?}"),
    }
}

fn bytes<'v>(what: &'static str, v: &'v Value) -> Result<&'v [u8], StreamError> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.as_bytes()),
        other => Err(bad(what, other)),
    }
}

fn text<'v>(what: &'static str, v: &'v Value) -> Result<&'v str, StreamError> {
    std::str::from_utf8(bytes(what, v)?).map_err(|_| bad(what, v))
}

fn array<'v>(what: &'static str, v: &'v Value) -> Result<&'v [Value], StreamError> {
    match v {
        Value::Array(items) => Ok(items),
        other => Err(bad(what, other)),
    }
}

fn int(what: &'static str, v: &Value) -> Result<u64, StreamError> {
    match v {
        Value::Int(n) => u64::try_from(*n).map_err(|_| bad(what, v)),
        other => text(what, other)?.parse().map_err(|_| bad(what, other)),
    }
}

/// `[id, [field, value, …]]`.
pub(crate) fn entry(v: &Value) -> Result<Entry, StreamError> {
    let parts = array("stream entry", v)?;
    let [id, fields] = parts else {
        return Err(bad("stream entry", v));
    };
    let id: StreamId = text("stream entry id", id)?.parse()?;
    let flat = match fields {
        Value::Nil => &[][..],
        other => array("stream entry fields", other)?,
    };
    if flat.len() % 2 != 0 {
        return Err(bad("stream entry fields", fields));
    }
    let fields = flat
        .chunks_exact(2)
        .map(|kv| {
            Ok((
                bytes("field name", &kv[0])?.to_vec(),
                bytes("field value", &kv[1])?.to_vec(),
            ))
        })
        .collect::<Result<_, StreamError>>()?;
    Ok(Entry { id, fields })
}

/// `XREADGROUP`'s reply for one stream: nil when the wait ran out, else
/// `[[stream, [entry, …]]]`.
pub(crate) fn read_group(v: &Value) -> Result<Vec<Entry>, StreamError> {
    let streams = match v {
        Value::Nil => return Ok(Vec::new()),
        other => array("XREADGROUP reply", other)?,
    };
    let mut out = Vec::new();
    for s in streams {
        let pair = array("XREADGROUP stream", s)?;
        let [_, entries] = pair else {
            return Err(bad("XREADGROUP stream", s));
        };
        for e in array("XREADGROUP entries", entries)? {
            out.push(entry(e)?);
        }
    }
    Ok(out)
}

/// What one reclaim did: the next cursor, the entries claimed with their
/// delivery counts, and how many went to the dead letters.
pub(crate) struct Reclaimed {
    pub(crate) cursor: String,
    pub(crate) claimed: Vec<(Entry, u64)>,
    pub(crate) dead: u64,
}

/// The reclaim script's reply: `[cursor, [[id, deliveries, fields], …],
/// dead]`.
pub(crate) fn reclaimed(v: &Value) -> Result<Reclaimed, StreamError> {
    let parts = array("reclaim reply", v)?;
    let [cursor, claimed, dead] = parts else {
        return Err(bad("reclaim reply", v));
    };
    let cursor = text("reclaim cursor", cursor)?.to_string();
    let mut out = Vec::new();
    for c in array("reclaimed entries", claimed)? {
        let triple = array("reclaimed entry", c)?;
        let [id, n, fields] = triple else {
            return Err(bad("reclaimed entry", c));
        };
        let e = entry(&Value::Array(vec![id.clone(), fields.clone()]))?;
        out.push((e, int("delivery count", n)?));
    }
    Ok(Reclaimed {
        cursor,
        claimed: out,
        dead: int("dead count", dead)?,
    })
}

/// From `XINFO GROUPS`, the entries of `group` not yet read (lag) plus
/// those read and not acknowledged (pending); `None` if the group is not
/// there.
pub(crate) fn group_backlog(v: &Value, group: &str) -> Option<u64> {
    let groups = array("XINFO GROUPS", v).ok()?;
    for g in groups {
        let flat = match g {
            Value::Array(items) => items.clone(),
            Value::Map(pairs) => pairs
                .iter()
                .flat_map(|(k, v)| [k.clone(), v.clone()])
                .collect(),
            _ => continue,
        };
        let get = |name: &str| {
            flat.chunks_exact(2)
                .find(|kv| bytes("key", &kv[0]).is_ok_and(|k| k == name.as_bytes()))
                .map(|kv| kv[1].clone())
        };
        if get("name").is_some_and(|n| bytes("name", &n).is_ok_and(|n| n == group.as_bytes())) {
            let pending = get("pending")
                .and_then(|p| int("pending", &p).ok())
                .unwrap_or(0);
            let lag = get("lag").and_then(|l| int("lag", &l).ok()).unwrap_or(0);
            return Some(pending.saturating_add(lag));
        }
    }
    None
}

/// From `CLUSTER SLOTS`, the `host:port` of the master serving `slot`.
pub(crate) fn slot_owner(v: &Value, slot: i64) -> Option<String> {
    for range in array("CLUSTER SLOTS", v).ok()? {
        let parts = array("slot range", range).ok()?;
        let (Some(Value::Int(lo)), Some(Value::Int(hi)), Some(master)) =
            (parts.first(), parts.get(1), parts.get(2))
        else {
            continue;
        };
        if (*lo..=*hi).contains(&slot) {
            let m = array("slot master", master).ok()?;
            let host = text("master host", m.first()?).ok()?;
            let Value::Int(port) = m.get(1)? else {
                return None;
            };
            return Some(format!("{host}:{port}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn replies_parse_and_bad_ones_are_typed_errors() {
        let reply = Value::Array(vec![Value::Array(vec![
            b("s"),
            Value::Array(vec![Value::Array(vec![
                b("5-1"),
                Value::Array(vec![b("d"), b("{}"), b("x"), b("y")]),
            ])]),
        ])]);
        let entries = read_group(&reply).unwrap();
        assert_eq!(entries[0].id, StreamId::new(5, 1));
        assert_eq!(entries[0].field("d"), Some(&b"{}"[..]));
        assert_eq!(entries[0].field("z"), None);
        assert!(read_group(&Value::Nil).unwrap().is_empty());
        assert!(read_group(&b("x")).is_err());
        let odd = Value::Array(vec![b("1-1"), Value::Array(vec![b("d")])]);
        assert!(entry(&odd).is_err());
        let bad_id = Value::Array(vec![b("one"), Value::Array(vec![])]);
        assert!(entry(&bad_id).is_err());
        let claimed = Value::Array(vec![
            b("0-0"),
            Value::Array(vec![Value::Array(vec![
                b("7-0"),
                Value::Int(3),
                Value::Array(vec![b("d"), b("1")]),
            ])]),
            Value::Int(2),
        ]);
        let r = reclaimed(&claimed).unwrap();
        assert_eq!((r.cursor.as_str(), r.claimed[0].1, r.dead), ("0-0", 3, 2));
        let info = Value::Array(vec![Value::Array(vec![
            b("name"),
            b("g"),
            b("pending"),
            Value::Int(4),
            b("lag"),
            Value::Int(6),
        ])]);
        assert_eq!(group_backlog(&info, "g"), Some(10));
        assert_eq!(group_backlog(&info, "h"), None);
    }
}
