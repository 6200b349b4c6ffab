//! Requests as values: [`Command::parse`] turns a request's arguments into a [`Command`] or
//! into the exact error Redis 7 answers (unknown command, wrong arity, syntax, integers, expire
//! times), checked in the order Redis checks them; [`DataCommand::apply`] runs a keyspace
//! command against one [`Db`]. Connection commands ([`ConnCommand`]) change the session and
//! are run by the connection (`server.rs`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use indexmap::IndexMap;

use super::db::{Db, Value, WrongType, WRONGTYPE};
use super::frame::{parse_i64, Frame};

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Conn(ConnCommand),
    Data(DataCommand),
}

/// Commands about the connection, not the keyspace.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnCommand {
    Ping(Option<Bytes>),
    Echo(Bytes),
    Quit,
    Hello {
        proto: Option<u8>,
        auth: Option<(Bytes, Bytes)>,
        setname: Option<Bytes>,
    },
    Auth {
        user: Option<Bytes>,
        password: Bytes,
    },
    Select(usize),
    ClientSetName(Bytes),
    ClientGetName,
    ClientId,
    ClientSetInfo,
    /// COMMAND, COMMAND DOCS: clients probe them; an empty answer makes them fall back.
    CommandDocs,
    CommandCount,
    ConfigGet(Vec<Bytes>),
    ConfigSet,
    Info,
}

/// When a key expires, as a command gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Deadline {
    /// Unix time in milliseconds (EX and PX are turned into this at parse time, as Redis does).
    At(i64),
    /// PERSIST (GETEX): remove the deadline.
    Persist,
}

/// SET's NX / XX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Only if the key is missing.
    Nx,
    /// Only if the key is present.
    Xx,
}

/// EXPIRE's NX / XX / GT / LT; XX may go with GT or LT, and then both must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpireIf {
    /// Only if the key has no deadline.
    pub nx: bool,
    /// Only if it has one.
    pub xx: bool,
    /// Only if the new deadline is later (no deadline counts as infinite).
    pub gt: bool,
    /// Only if the new deadline is earlier.
    pub lt: bool,
}

/// Commands on the selected database.
#[derive(Debug, Clone, PartialEq)]
pub enum DataCommand {
    Get(Bytes),
    Set {
        key: Bytes,
        value: Bytes,
        deadline: Option<i64>,
        condition: Option<Condition>,
        keep_ttl: bool,
        get: bool,
    },
    GetEx {
        key: Bytes,
        deadline: Option<Deadline>,
    },
    MGet(Vec<Bytes>),
    MSet(Vec<(Bytes, Bytes)>),
    Del(Vec<Bytes>),
    Exists(Vec<Bytes>),
    Expire {
        key: Bytes,
        at_ms: i64,
        only: ExpireIf,
    },
    Ttl {
        key: Bytes,
        millis: bool,
    },
    IncrBy {
        key: Bytes,
        by: i64,
    },
    Type(Bytes),
    HGet {
        key: Bytes,
        field: Bytes,
    },
    HSet {
        key: Bytes,
        pairs: Vec<(Bytes, Bytes)>,
    },
    HGetAll(Bytes),
    HDel {
        key: Bytes,
        fields: Vec<Bytes>,
    },
    Push {
        key: Bytes,
        values: Vec<Bytes>,
        left: bool,
    },
    LRange {
        key: Bytes,
        start: i64,
        stop: i64,
    },
    LTrim {
        key: Bytes,
        start: i64,
        stop: i64,
    },
    FlushDb,
    DbSize,
}

/// Redis's arity of each command it knows (`COMMAND INFO`): n means exactly n arguments
/// (name included), -n at least n. Container commands list their subcommands separately.
fn arity(name: &str) -> Option<i64> {
    Some(match name {
        "ping" | "quit" | "hello" | "flushdb" | "info" | "command" => -1,
        "dbsize" => 1,
        "get" | "ttl" | "pttl" | "incr" | "decr" | "type" | "hgetall" | "select" | "echo" => 2,
        "getex" | "mget" | "del" | "exists" | "auth" | "client" | "config" => -2,
        "incrby" | "decrby" | "hget" => 3,
        "set" | "mset" | "expire" | "pexpire" | "hdel" | "lpush" | "rpush" => -3,
        "setex" | "lrange" | "ltrim" => 4,
        "hset" => -4,
        "client|setname" | "config|resetstat" | "command|count" => 3,
        "client|getname" | "client|id" => 2,
        "client|setinfo" => 4,
        "command|docs" => -2,
        "config|get" => -3,
        "config|set" => -4,
        _ => return None,
    })
}

fn is_container(name: &str) -> bool {
    matches!(name, "client" | "command" | "config")
}

/// Unix time now, in milliseconds.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Command {
    /// Parses one request (never empty: the connection skips empty requests). `Err` is the
    /// error reply's text, as Redis words it.
    pub fn parse(args: &[Bytes]) -> Result<Command, String> {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        let Some(mut full_arity) = arity(&name) else {
            return Err(unknown_command(args));
        };
        let mut full_name = name.clone();
        if is_container(&name) && args.len() >= 2 {
            let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
            full_name = format!("{name}|{sub}");
            full_arity = match arity(&full_name) {
                Some(arity) => arity,
                None => {
                    return Err(format!(
                        "ERR unknown subcommand '{}'. Try {} HELP.",
                        truncate(&args[1], 128),
                        name.to_ascii_uppercase()
                    ))
                }
            };
        }
        let n = args.len() as i64;
        if (full_arity > 0 && n != full_arity) || n < -full_arity {
            return Err(wrong_arity(&full_name));
        }
        let a = |i: usize| args[i].clone();
        let int = |i: usize| parse_i64(&args[i]).ok_or_else(|| NOT_INTEGER.to_string());
        let conn = |c| Ok(Command::Conn(c));
        let data = |c| Ok(Command::Data(c));
        match full_name.as_str() {
            "ping" if n > 2 => Err(wrong_arity("ping")),
            "ping" => conn(ConnCommand::Ping(args.get(1).cloned())),
            "echo" => conn(ConnCommand::Echo(a(1))),
            "quit" => conn(ConnCommand::Quit),
            "hello" => parse_hello(args),
            "auth" => match n {
                2 => conn(ConnCommand::Auth {
                    user: None,
                    password: a(1),
                }),
                3 => conn(ConnCommand::Auth {
                    user: Some(a(1)),
                    password: a(2),
                }),
                _ => Err(SYNTAX.into()),
            },
            "select" => {
                let index = int(1)?;
                if !(0..super::db::DATABASES as i64).contains(&index) {
                    return Err("ERR DB index is out of range".into());
                }
                conn(ConnCommand::Select(index as usize))
            }
            "client|setname" => conn(ConnCommand::ClientSetName(a(2))),
            "client|getname" => conn(ConnCommand::ClientGetName),
            "client|id" => conn(ConnCommand::ClientId),
            "client|setinfo" => {
                let attr = String::from_utf8_lossy(&args[2]).to_ascii_lowercase();
                if attr != "lib-name" && attr != "lib-ver" {
                    return Err(format!(
                        "ERR Unrecognized option '{}'",
                        String::from_utf8_lossy(&args[2])
                    ));
                }
                conn(ConnCommand::ClientSetInfo)
            }
            "command" => conn(ConnCommand::CommandDocs),
            "command|docs" => conn(ConnCommand::CommandDocs),
            "command|count" => conn(ConnCommand::CommandCount),
            "config|get" => conn(ConnCommand::ConfigGet(args[2..].to_vec())),
            "config|set" | "config|resetstat" => conn(ConnCommand::ConfigSet),
            "info" => conn(ConnCommand::Info),
            "get" => data(DataCommand::Get(a(1))),
            "set" => parse_set(args),
            "setex" => {
                let seconds = int(2)?;
                let deadline = relative_deadline(seconds, 1000, "setex")?;
                data(DataCommand::Set {
                    key: a(1),
                    value: a(3),
                    deadline: Some(deadline),
                    condition: None,
                    keep_ttl: false,
                    get: false,
                })
            }
            "getex" => parse_getex(args),
            "mget" => data(DataCommand::MGet(args[1..].to_vec())),
            "mset" if n % 2 == 0 => Err(wrong_arity("mset")),
            "mset" => data(DataCommand::MSet(pairs(&args[1..]))),
            "del" => data(DataCommand::Del(args[1..].to_vec())),
            "exists" => data(DataCommand::Exists(args[1..].to_vec())),
            "expire" | "pexpire" => parse_expire(args, &full_name),
            "ttl" | "pttl" => data(DataCommand::Ttl {
                key: a(1),
                millis: full_name == "pttl",
            }),
            "incr" => data(DataCommand::IncrBy { key: a(1), by: 1 }),
            "decr" => data(DataCommand::IncrBy { key: a(1), by: -1 }),
            "incrby" => data(DataCommand::IncrBy {
                key: a(1),
                by: int(2)?,
            }),
            "decrby" => {
                let by = int(2)?;
                if by == i64::MIN {
                    return Err("ERR decrement would overflow".into());
                }
                data(DataCommand::IncrBy { key: a(1), by: -by })
            }
            "type" => data(DataCommand::Type(a(1))),
            "hget" => data(DataCommand::HGet {
                key: a(1),
                field: a(2),
            }),
            "hset" if n % 2 == 1 => Err(wrong_arity("hset")),
            "hset" => data(DataCommand::HSet {
                key: a(1),
                pairs: pairs(&args[2..]),
            }),
            "hgetall" => data(DataCommand::HGetAll(a(1))),
            "hdel" => data(DataCommand::HDel {
                key: a(1),
                fields: args[2..].to_vec(),
            }),
            "lpush" | "rpush" => data(DataCommand::Push {
                key: a(1),
                values: args[2..].to_vec(),
                left: full_name == "lpush",
            }),
            "lrange" | "ltrim" => {
                let (key, start, stop) = (a(1), int(2)?, int(3)?);
                data(if full_name == "lrange" {
                    DataCommand::LRange { key, start, stop }
                } else {
                    DataCommand::LTrim { key, start, stop }
                })
            }
            "flushdb" => {
                let mode = args.get(1).map(|m| m.to_ascii_lowercase());
                match (n, mode.as_deref()) {
                    (1, _) | (2, Some(b"async" | b"sync")) => data(DataCommand::FlushDb),
                    _ => Err(SYNTAX.into()),
                }
            }
            "dbsize" => data(DataCommand::DbSize),
            // Every name with an arity has a branch above; this only guards a future typo.
            _ => Err(unknown_command(args)),
        }
    }
}

fn wrong_arity(name: &str) -> String {
    format!("ERR wrong number of arguments for '{name}' command")
}

/// Redis's text for an unknown command: the name as sent, then the first arguments, each
/// quoted and followed by a space, until 128 bytes of them are written.
fn unknown_command(args: &[Bytes]) -> String {
    let mut listed = String::new();
    for arg in &args[1..] {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        listed.push_str(&format!("'{}' ", truncate(arg, room)));
    }
    format!(
        "ERR unknown command '{}', with args beginning with: {listed}",
        truncate(&args[0], 128)
    )
}

fn truncate(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

fn pairs(flat: &[Bytes]) -> Vec<(Bytes, Bytes)> {
    flat.chunks_exact(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}

/// Redis's `getExpireMillisecondsOrReply` for EX/PX (`unit` 1000 or 1): positive, and still
/// positive once made absolute. Returns unix milliseconds.
fn relative_deadline(amount: i64, unit: i64, command: &str) -> Result<i64, String> {
    absolute_deadline(amount, unit, command, true)
}

fn absolute_deadline(amount: i64, unit: i64, command: &str, relative: bool) -> Result<i64, String> {
    let invalid = || format!("ERR invalid expire time in '{command}' command");
    if amount <= 0 || (unit == 1000 && amount > i64::MAX / 1000) {
        return Err(invalid());
    }
    let ms = amount * unit;
    let ms = if relative {
        ms.checked_add(unix_ms()).ok_or_else(invalid)?
    } else {
        ms
    };
    Ok(ms)
}

fn parse_set(args: &[Bytes]) -> Result<Command, String> {
    let mut condition = None;
    let mut get = false;
    let mut keep_ttl = false;
    // (unit, relative) of the expire option given, and its argument.
    let mut expire: Option<(i64, bool, &Bytes)> = None;
    let mut j = 3;
    while j < args.len() {
        let opt = args[j].to_ascii_lowercase();
        let next = args.get(j + 1);
        match (opt.as_slice(), next) {
            (b"nx", _) if condition != Some(Condition::Xx) => condition = Some(Condition::Nx),
            (b"xx", _) if condition != Some(Condition::Nx) => condition = Some(Condition::Xx),
            (b"get", _) => get = true,
            (b"keepttl", _) if expire.is_none() => keep_ttl = true,
            (b"ex" | b"px" | b"exat" | b"pxat", Some(value)) if !keep_ttl => {
                let kind = (if opt[0] == b'e' { 1000 } else { 1 }, opt.len() == 2);
                // Only the same option may repeat (the last one wins), as in Redis.
                if expire.is_some_and(|(unit, rel, _)| (unit, rel) != kind) {
                    return Err(SYNTAX.into());
                }
                expire = Some((kind.0, kind.1, value));
                j += 1;
            }
            _ => return Err(SYNTAX.into()),
        }
        j += 1;
    }
    let deadline = match expire {
        None => None,
        Some((unit, relative, value)) => {
            let amount = parse_i64(value).ok_or_else(|| NOT_INTEGER.to_string())?;
            Some(absolute_deadline(amount, unit, "set", relative)?)
        }
    };
    Ok(Command::Data(DataCommand::Set {
        key: args[1].clone(),
        value: args[2].clone(),
        deadline,
        condition,
        keep_ttl,
        get,
    }))
}

fn parse_getex(args: &[Bytes]) -> Result<Command, String> {
    let mut persist = false;
    let mut expire: Option<(i64, bool, &Bytes)> = None;
    let mut j = 2;
    while j < args.len() {
        let opt = args[j].to_ascii_lowercase();
        match (opt.as_slice(), args.get(j + 1)) {
            (b"persist", _) if expire.is_none() => persist = true,
            (b"ex" | b"px" | b"exat" | b"pxat", Some(value)) if !persist => {
                let kind = (if opt[0] == b'e' { 1000 } else { 1 }, opt.len() == 2);
                if expire.is_some_and(|(unit, rel, _)| (unit, rel) != kind) {
                    return Err(SYNTAX.into());
                }
                expire = Some((kind.0, kind.1, value));
                j += 1;
            }
            _ => return Err(SYNTAX.into()),
        }
        j += 1;
    }
    let deadline = match expire {
        None if persist => Some(Deadline::Persist),
        None => None,
        Some((unit, relative, value)) => {
            let amount = parse_i64(value).ok_or_else(|| NOT_INTEGER.to_string())?;
            Some(Deadline::At(absolute_deadline(
                amount, unit, "getex", relative,
            )?))
        }
    };
    Ok(Command::Data(DataCommand::GetEx {
        key: args[1].clone(),
        deadline,
    }))
}

fn parse_expire(args: &[Bytes], name: &str) -> Result<Command, String> {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        match opt.to_ascii_lowercase().as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            _ => {
                return Err(format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(opt)
                ))
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err("ERR NX and XX, GT or LT options at the same time are not compatible".into());
    }
    if gt && lt {
        return Err("ERR GT and LT options at the same time are not compatible".into());
    }
    let mut when = parse_i64(&args[2]).ok_or_else(|| NOT_INTEGER.to_string())?;
    // EXPIRE allows negative times (the key is deleted) but not overflow.
    let invalid = || format!("ERR invalid expire time in '{name}' command");
    if name == "expire" {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    let at_ms = when.checked_add(unix_ms()).ok_or_else(invalid)?;
    Ok(Command::Data(DataCommand::Expire {
        key: args[1].clone(),
        at_ms,
        only: ExpireIf { nx, xx, gt, lt },
    }))
}

fn parse_hello(args: &[Bytes]) -> Result<Command, String> {
    let mut proto = None;
    let mut next = 1;
    if let Some(version) = args.get(1) {
        let version = parse_i64(version)
            .ok_or_else(|| "ERR Protocol version is not an integer or out of range".to_string())?;
        if !(2..=3).contains(&version) {
            return Err("NOPROTO unsupported protocol version".into());
        }
        proto = Some(version as u8);
        next = 2;
    }
    let (mut auth, mut setname) = (None, None);
    let mut j = next;
    while j < args.len() {
        let more = args.len() - 1 - j;
        match args[j].to_ascii_lowercase().as_slice() {
            b"auth" if more >= 2 => {
                auth = Some((args[j + 1].clone(), args[j + 2].clone()));
                j += 2;
            }
            b"setname" if more >= 1 => {
                setname = Some(args[j + 1].clone());
                j += 1;
            }
            _ => {
                return Err(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&args[j])
                ))
            }
        }
        j += 1;
    }
    Ok(Command::Conn(ConnCommand::Hello {
        proto,
        auth,
        setname,
    }))
}

impl DataCommand {
    /// Runs the command on `db` at `now` (one clock reading for the whole command).
    pub fn apply(self, db: &mut Db, now: Instant) -> Frame {
        match self.run(db, now) {
            Ok(frame) => frame,
            Err(WrongType) => Frame::error(WRONGTYPE),
        }
    }

    fn run(self, db: &mut Db, now: Instant) -> Result<Frame, WrongType> {
        let now_ms = unix_ms();
        // A unix-millisecond deadline as an instant on the monotonic clock.
        let instant = |at_ms: i64| {
            let ahead = at_ms.saturating_sub(now_ms);
            now + Duration::from_millis(ahead.max(0) as u64)
        };
        Ok(match self {
            DataCommand::Get(key) => db.get_string(&key, now)?.map_or(Frame::Null, Frame::Bulk),
            DataCommand::Set {
                key,
                value,
                deadline,
                condition,
                keep_ttl,
                get,
            } => {
                let old = if get {
                    Some(db.get_string(&key, now)?)
                } else {
                    None
                };
                let exists = db.exists(&key, now);
                let blocked = match condition {
                    Some(Condition::Nx) => exists,
                    Some(Condition::Xx) => !exists,
                    _ => false,
                };
                if !blocked {
                    match deadline {
                        // A deadline already past (EXAT in the past): the key is just gone.
                        Some(at) if at <= now_ms => {
                            db.remove(&key);
                        }
                        _ => db.set(key, Value::String(value), deadline.map(instant), keep_ttl),
                    }
                }
                match old {
                    Some(old) => old.map_or(Frame::Null, Frame::Bulk),
                    None if blocked => Frame::Null,
                    None => Frame::ok(),
                }
            }
            DataCommand::GetEx { key, deadline } => {
                let Some(value) = db.get_string(&key, now)? else {
                    return Ok(Frame::Null);
                };
                match deadline {
                    None => {}
                    Some(Deadline::Persist) => {
                        db.set_deadline(&key, None, now);
                    }
                    Some(Deadline::At(at)) if at <= now_ms => {
                        db.remove(&key);
                    }
                    Some(Deadline::At(at)) => {
                        db.set_deadline(&key, Some(instant(at)), now);
                    }
                }
                Frame::Bulk(value)
            }
            DataCommand::MGet(keys) => Frame::Array(
                keys.iter()
                    .map(|key| match db.get(key, now) {
                        Some(Value::String(s)) => Frame::Bulk(s.clone()),
                        _ => Frame::Null,
                    })
                    .collect(),
            ),
            DataCommand::MSet(pairs) => {
                for (key, value) in pairs {
                    db.set(key, Value::String(value), None, false);
                }
                Frame::ok()
            }
            DataCommand::Del(keys) => {
                let removed = keys
                    .iter()
                    .filter(|key| db.exists(key, now) && db.remove(key).is_some())
                    .count();
                Frame::Integer(removed as i64)
            }
            DataCommand::Exists(keys) => {
                Frame::Integer(keys.iter().filter(|key| db.exists(key, now)).count() as i64)
            }
            DataCommand::Expire { key, at_ms, only } => {
                let Some(current) = db.ttl(&key, now) else {
                    return Ok(Frame::Integer(0));
                };
                let current_ms = current.map(|left| now_ms + left.as_millis() as i64);
                // No deadline counts as infinite: GT never beats it, LT always does.
                let refused = (only.nx && current_ms.is_some())
                    || (only.xx && current_ms.is_none())
                    || (only.gt && current_ms.is_none_or(|c| at_ms <= c))
                    || (only.lt && current_ms.is_some_and(|c| at_ms >= c));
                if refused {
                    return Ok(Frame::Integer(0));
                }
                if at_ms <= now_ms {
                    db.remove(&key);
                } else {
                    db.set_deadline(&key, Some(instant(at_ms)), now);
                }
                Frame::Integer(1)
            }
            DataCommand::Ttl { key, millis } => Frame::Integer(match db.ttl(&key, now) {
                None => -2,
                Some(None) => -1,
                Some(Some(left)) if millis => left.as_millis() as i64,
                // Redis rounds TTL to the nearest second.
                Some(Some(left)) => (left.as_millis() as i64 + 500) / 1000,
            }),
            DataCommand::IncrBy { key, by } => {
                let current = match db.get_string(&key, now)? {
                    None => 0,
                    Some(text) => match parse_i64(&text) {
                        Some(n) => n,
                        None => return Ok(Frame::error(NOT_INTEGER)),
                    },
                };
                let Some(next) = current.checked_add(by) else {
                    return Ok(Frame::error("ERR increment or decrement would overflow"));
                };
                let text = Bytes::from(next.to_string());
                // Redis overwrites the value in place: the deadline stays.
                db.set(key, Value::String(text), None, true);
                Frame::Integer(next)
            }
            DataCommand::Type(key) => {
                Frame::Simple(db.get(&key, now).map_or("none", Value::type_name).into())
            }
            DataCommand::HGet { key, field } => match db.get(&key, now) {
                None => Frame::Null,
                Some(Value::Hash(hash)) => {
                    hash.get(&field).cloned().map_or(Frame::Null, Frame::Bulk)
                }
                Some(_) => return Err(WrongType),
            },
            DataCommand::HSet { key, pairs } => {
                let Value::Hash(hash) =
                    db.get_or_insert(&key, now, || Value::Hash(IndexMap::new()))
                else {
                    return Err(WrongType);
                };
                let added = pairs
                    .into_iter()
                    .filter(|(field, value)| hash.insert(field.clone(), value.clone()).is_none())
                    .count();
                Frame::Integer(added as i64)
            }
            DataCommand::HGetAll(key) => match db.get(&key, now) {
                None => Frame::Map(Vec::new()),
                Some(Value::Hash(hash)) => Frame::Map(
                    hash.iter()
                        .map(|(f, v)| (Frame::Bulk(f.clone()), Frame::Bulk(v.clone())))
                        .collect(),
                ),
                Some(_) => return Err(WrongType),
            },
            DataCommand::HDel { key, fields } => {
                let removed = match db.get_mut(&key, now) {
                    None => 0,
                    Some(Value::Hash(hash)) => fields
                        .iter()
                        .filter(|field| hash.shift_remove(*field).is_some())
                        .count(),
                    Some(_) => return Err(WrongType),
                };
                db.drop_if_empty(&key);
                Frame::Integer(removed as i64)
            }
            DataCommand::Push { key, values, left } => {
                let Value::List(list) =
                    db.get_or_insert(&key, now, || Value::List(Default::default()))
                else {
                    return Err(WrongType);
                };
                for value in values {
                    if left {
                        list.push_front(value);
                    } else {
                        list.push_back(value);
                    }
                }
                Frame::Integer(list.len() as i64)
            }
            DataCommand::LRange { key, start, stop } => match db.get(&key, now) {
                None => Frame::Array(Vec::new()),
                Some(Value::List(list)) => match range(list.len(), start, stop) {
                    None => Frame::Array(Vec::new()),
                    Some((from, to)) => {
                        Frame::Array(list.range(from..=to).cloned().map(Frame::Bulk).collect())
                    }
                },
                Some(_) => return Err(WrongType),
            },
            DataCommand::LTrim { key, start, stop } => {
                match db.get_mut(&key, now) {
                    None => {}
                    Some(Value::List(list)) => match range(list.len(), start, stop) {
                        None => list.clear(),
                        Some((from, to)) => {
                            list.truncate(to + 1);
                            list.drain(..from);
                        }
                    },
                    Some(_) => return Err(WrongType),
                }
                db.drop_if_empty(&key);
                Frame::ok()
            }
            DataCommand::FlushDb => {
                db.clear();
                Frame::ok()
            }
            DataCommand::DbSize => Frame::Integer(db.len() as i64),
        })
    }
}

/// Redis's list range arithmetic: negative indexes count from the end; `None` when empty.
fn range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    (start <= stop && start < len).then_some((start as usize, stop as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Command, String> {
        let args: Vec<Bytes> = text
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        Command::parse(&args)
    }

    #[test]
    fn unknown_commands_and_wrong_arities_read_as_redis_writes_them() {
        assert_eq!(
            parse("FOO a b").unwrap_err(),
            "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            parse("foo").unwrap_err(),
            "ERR unknown command 'foo', with args beginning with: "
        );
        assert_eq!(
            parse("GET").unwrap_err(),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            parse("client setname").unwrap_err(),
            "ERR wrong number of arguments for 'client|setname' command"
        );
        assert_eq!(
            parse("client nope").unwrap_err(),
            "ERR unknown subcommand 'nope'. Try CLIENT HELP."
        );
        assert_eq!(
            parse("mset a b c").unwrap_err(),
            "ERR wrong number of arguments for 'mset' command"
        );
    }

    #[test]
    fn set_options_conflict_as_in_redis() {
        assert_eq!(parse("set k v nx xx").unwrap_err(), SYNTAX);
        assert_eq!(parse("set k v ex 10 px 10").unwrap_err(), SYNTAX);
        assert_eq!(parse("set k v ex").unwrap_err(), SYNTAX);
        assert_eq!(parse("set k v ex ten").unwrap_err(), NOT_INTEGER);
        assert_eq!(
            parse("set k v ex 0").unwrap_err(),
            "ERR invalid expire time in 'set' command"
        );
        assert!(parse("set k v ex 10 ex 20 nx get").is_ok());
    }

    #[test]
    fn list_ranges_clamp_like_redis() {
        assert_eq!(range(5, 0, -1), Some((0, 4)));
        assert_eq!(range(5, -2, 100), Some((3, 4)));
        assert_eq!(range(5, 3, 1), None);
        assert_eq!(range(5, 7, 9), None);
        assert_eq!(range(0, 0, -1), None);
    }
}
