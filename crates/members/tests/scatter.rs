//! A scatter root over the live member set: shards × replicas from member
//! metadata, leaves that call the member's own address (real TCP servers
//! on loopback), shards without a live member reported failed, and bad
//! metadata and settings.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use weft_core::{Combine, ShardId};
use weft_lease::{LeaseConfig, MemoryStore, Version};
use weft_members::{
    Live, LiveScatter, Member, MemberContext, MemberSet, MemberTopology, MembersError,
    Registration, TopologySpec, WatchConfig, Watcher,
};
use weft_scatter::{CallOptions, Gather, Plan, ScatterConfig, ShardOutcome};

const TTL: Duration = Duration::from_secs(3);

/// Collects every answer, in shard order.
#[derive(Debug)]
struct Collect;

impl Combine for Collect {
    type Input = (u32, String);
    type Acc = Vec<(u32, String)>;
    type Output = Vec<(u32, String)>;
    fn create(&self) -> Self::Acc {
        Vec::new()
    }
    fn add(&self, acc: &mut Self::Acc, input: Self::Input) {
        acc.push(input);
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        acc.extend(other);
    }
    fn extract(&self, mut acc: Self::Acc) -> Self::Output {
        acc.sort();
        acc
    }
}

/// A server that answers each line with its own name.
async fn serve(name: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let name = name.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(query)) = lines.next_line().await {
                    let reply = format!("{name} {query}\n");
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

/// The leaf: one line to the member's address, one line back.
async fn ask(query: String, cx: MemberContext) -> Result<(u32, String), std::io::Error> {
    let socket = TcpStream::connect(cx.address()).await?;
    let (read, mut write) = socket.into_split();
    write.write_all(format!("{query}\n").as_bytes()).await?;
    let reply = BufReader::new(read)
        .lines()
        .next_line()
        .await?
        .ok_or_else(|| std::io::Error::other("closed"))?;
    // The member the root chose is the member that answered.
    assert!(reply.starts_with(cx.member().member.name()), "{reply}");
    Ok((cx.cx.shard.get(), reply))
}

fn shard_of(reply: &str) -> u32 {
    // Names are s<shard>-r<replica>.
    reply[1..reply.find('-').unwrap()].parse().unwrap()
}

#[tokio::test]
async fn leaves_call_their_shards_members_at_their_addresses_and_empty_shards_fail() {
    let store = Arc::new(MemoryStore::new());
    let mut regs = std::collections::HashMap::new();
    for shard in 0..4 {
        for replica in 0..2 {
            let name = format!("s{shard}-r{replica}");
            let address = serve(name.clone()).await;
            let me = Member::new(name.clone(), address)
                .unwrap()
                .with_meta("shard", shard.to_string())
                .unwrap()
                .with_meta("replica", replica.to_string())
                .unwrap();
            let reg =
                Registration::register(store.clone(), "index/", me, LeaseConfig::new(TTL), TTL)
                    .await
                    .unwrap();
            regs.insert(name, reg);
        }
    }
    let mut watcher =
        Watcher::new(store.clone(), "index/", WatchConfig::new(TTL).unwrap()).unwrap();
    let root = LiveScatter::new(
        TopologySpec::sharded(4).unwrap(),
        ask,
        ScatterConfig::new(Duration::from_secs(5)),
    )
    .unwrap();
    root.apply(&watcher.next().await.unwrap()).unwrap();
    let live = root.root().unwrap();
    assert_eq!(live.topology().topology().shard_count(), 4);
    assert_eq!(live.topology().topology().replica_count(), 8);
    for shard in 0..4 {
        let names: Vec<&str> = live
            .topology()
            .members_of(ShardId::new(shard))
            .map(|l| l.member.name())
            .collect();
        assert_eq!(names, [format!("s{shard}-r0"), format!("s{shard}-r1")]);
    }
    let all = |q: &str| Plan::broadcast(4, q.to_string());
    for _ in 0..20 {
        let got = root
            .gather(all("q"), &Collect, CallOptions::default())
            .await
            .unwrap();
        let answers = got.require_complete().unwrap();
        assert_eq!(answers.len(), 4);
        for (shard, reply) in &answers {
            assert_eq!(shard_of(reply), *shard, "shard {shard} answered by {reply}");
        }
    }

    // Shard 0 loses a replica: every call to it goes to the other one.
    // Shard 1 loses both: it is reported failed, the others answer.
    for name in ["s0-r0", "s1-r0", "s1-r1"] {
        regs.remove(name).unwrap().deregister().await.unwrap();
    }
    let set = loop {
        let set = watcher.next().await.unwrap();
        if set.len() == 5 {
            break set;
        }
    };
    root.apply(&set).unwrap();
    for _ in 0..20 {
        let got = root
            .gather(all("q"), &Collect, CallOptions::default())
            .await
            .unwrap();
        assert!(
            !got.report.complete(),
            "a shard without members made a complete answer"
        );
        assert_eq!(got.report.answered(), 3);
        let failed = &got.report.shards[1];
        assert!(
            matches!(&failed.outcome, ShardOutcome::Failed { error, .. } if error.contains("no live member")),
            "{failed:?}"
        );
        for (shard, reply) in &got.output {
            assert_eq!(shard_of(reply), *shard);
            assert!(
                !reply.starts_with("s0-r0") && !reply.starts_with("s1-"),
                "{reply}"
            );
        }
    }
}

fn live(name: &str, meta: &[(&str, &str)]) -> Live {
    let mut m = Member::new(name, format!("{name}:1")).unwrap();
    for (k, v) in meta {
        m = m.with_meta(*k, *v).unwrap();
    }
    Live {
        member: m,
        token: Version(1),
    }
}

#[test]
fn metadata_that_does_not_place_a_member_leaves_it_out_by_name() {
    let set = MemberSet::of(
        1,
        vec![
            live("a", &[("shard", "0"), ("replica", "1")]),
            live("b", &[("shard", "0"), ("replica", "0")]),
            live("c", &[("shard", "1")]),
            live("no-shard", &[]),
            live("too-high", &[("shard", "2")]),
            live("not-a-number", &[("shard", "one")]),
            live("bad-replica", &[("shard", "1"), ("replica", "-1")]),
        ],
    )
    .unwrap();
    let spec = TopologySpec::sharded(2).unwrap();
    let t = MemberTopology::build(&set, &spec, Gather::All).unwrap();
    let mut left_out: Vec<&str> = t.misplaced().iter().map(|m| m.name.as_str()).collect();
    left_out.sort_unstable();
    assert_eq!(
        left_out,
        ["bad-replica", "no-shard", "not-a-number", "too-high"]
    );
    assert!(t.misplaced().iter().all(|m| !m.reason.is_empty()));
    let names = |t: &MemberTopology, s| -> Vec<String> {
        t.members_of(ShardId::new(s))
            .map(|l| l.member.name().to_string())
            .collect()
    };
    // Replica order from the metadata, then the name.
    assert_eq!(names(&t, 0), ["b", "a"]);
    assert_eq!(names(&t, 1), ["c"]);
    assert_eq!(t.topology().replica_count(), 3, "no stand-ins needed");

    // A quorum of 2: shard 1 has one member, so it gets one stand-in.
    let q = MemberTopology::build(&set, &spec, Gather::Quorum(2)).unwrap();
    assert_eq!(q.topology().replicas_of(ShardId::new(1)).len(), 2);
    assert_eq!(q.topology().replica_count(), 4);
    assert!(q.member(3).is_none(), "the stand-in has no member");

    // Root distribution: every member serves every part, metadata or not.
    let r =
        MemberTopology::build(&set, &TopologySpec::replicated(3).unwrap(), Gather::All).unwrap();
    assert!(r.misplaced().is_empty());
    for part in 0..3 {
        assert_eq!(r.members_of(ShardId::new(part)).count(), 7);
    }
    // Other metadata keys.
    let other = TopologySpec::sharded(2).unwrap().keys("s", "r").unwrap();
    let o = MemberTopology::build(
        &MemberSet::of(1, vec![live("x", &[("s", "1"), ("shard", "0")])]).unwrap(),
        &other,
        Gather::All,
    )
    .unwrap();
    assert_eq!(names(&o, 1), ["x"]);
    // Sizes a root cannot take are refused before anything is built.
    assert!(matches!(
        MemberTopology::build(&set, &spec, Gather::Quorum(usize::MAX)),
        Err(MembersError::Invalid { what: "quorum", .. })
    ));
    let twenty: Vec<Live> = (0..20).map(|i| live(&format!("w{i}"), &[])).collect();
    let wide = TopologySpec::replicated(1 << 20).unwrap();
    assert!(matches!(
        MemberTopology::build(&MemberSet::of(1, twenty).unwrap(), &wide, Gather::All),
        Err(MembersError::Invalid {
            what: "member topology",
            ..
        })
    ));
    // An empty set: each shard has a stand-in only.
    let empty =
        MemberTopology::build(&MemberSet::of(1, vec![]).unwrap(), &spec, Gather::All).unwrap();
    assert_eq!(empty.members_of(ShardId::new(0)).count(), 0);
    assert_eq!(empty.topology().replica_count(), 1);
}

#[tokio::test]
async fn bad_specs_and_calls_before_a_set_are_typed_errors_and_old_sets_are_ignored() {
    assert!(matches!(
        TopologySpec::sharded(0),
        Err(MembersError::Invalid {
            what: "shard count",
            ..
        })
    ));
    assert!(matches!(
        TopologySpec::replicated(usize::MAX),
        Err(MembersError::Invalid {
            what: "part count",
            ..
        })
    ));
    for (s, r) in [("", "r"), ("s", ""), ("k", "k")] {
        assert!(matches!(
            TopologySpec::sharded(2).unwrap().keys(s, r),
            Err(MembersError::Invalid {
                what: "metadata keys",
                ..
            })
        ));
    }
    assert!(TopologySpec::replicated(2).unwrap().keys("s", "r").is_err());
    let leaf = |q: String, cx: MemberContext| async move {
        Ok::<_, std::io::Error>((cx.cx.shard.get(), q))
    };
    // First 5 of 4 shards can never be met.
    let config = ScatterConfig::new(Duration::from_secs(1)).gather(Gather::FirstK(5));
    assert!(matches!(
        LiveScatter::new(TopologySpec::sharded(4).unwrap(), leaf, config),
        Err(MembersError::Invalid {
            what: "scatter config",
            ..
        })
    ));
    let root = LiveScatter::new(
        TopologySpec::sharded(2).unwrap(),
        leaf,
        ScatterConfig::new(Duration::from_secs(1)),
    )
    .unwrap();
    let plan = || Plan::broadcast(2, "q".to_string());
    assert_eq!(
        root.gather(plan(), &Collect, CallOptions::default())
            .await
            .unwrap_err(),
        MembersError::NoSet
    );
    let newer = MemberSet::of(2, vec![live("a", &[("shard", "0")])]).unwrap();
    let older = MemberSet::of(1, vec![live("b", &[("shard", "1")])]).unwrap();
    root.apply(&newer).unwrap();
    root.apply(&older).unwrap();
    let members: Vec<String> = root
        .root()
        .unwrap()
        .topology()
        .set()
        .members()
        .iter()
        .map(|l| l.member.name().to_string())
        .collect();
    assert_eq!(members, ["a"], "an older set replaced a newer one");
    // A plan naming a shard outside the spec is the root's error.
    let outside = Plan::new(vec![(ShardId::new(7), "q".to_string())]);
    assert!(matches!(
        root.gather(outside, &Collect, CallOptions::default()).await,
        Err(MembersError::Scatter { .. })
    ));
}
