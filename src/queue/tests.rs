use super::*;
use crate::accounts::Role;
use crate::settings::TeamHours;

fn agent(id: &str, teams: &[&str], max: i64) -> Account {
    Account {
        id: id.into(),
        name: id.into(),
        email: format!("{id}@example.com"),
        role: Role::Agent,
        teams: teams.iter().map(|t| t.to_string()).collect(),
        max_chats: max,
    }
}

fn waiting(id: &str, team: &str, priority: i64, at: i64) -> Waiting {
    Waiting {
        conversation_id: id.into(),
        handoff_id: 1,
        team: team.into(),
        priority,
        reasons: Vec::new(),
        escalated_at: at,
        customer: None,
        preview: String::new(),
        origin: None,
        declined: HashSet::new(),
        alerts: 0,
        shown_position: 0,
        customer_away_since: None,
    }
}

fn caps() -> Caps {
    Caps {
        max_queued: 100,
        per_address: 100,
    }
}

fn queue(settings: HandoffSettings) -> Queue {
    Queue::new(settings, caps())
}

fn ids(list: &[&str]) -> Vec<ConversationId> {
    list.iter().map(|s| ConversationId::from(*s)).collect()
}

#[test]
fn business_hours_follow_the_team_time_zone_and_days() {
    let hours = TeamHours::default(); // Mon–Fri 09:00–17:00 UTC
    let monday_10 = 1_704_103_200_000; // 2024-01-01 was a Monday.
    assert!(within_hours(&hours, monday_10));
    assert!(!within_hours(&hours, monday_10 + 8 * 3_600_000)); // 18:00
    assert!(!within_hours(&hours, monday_10 + 5 * 86_400_000)); // Saturday
    let tokyo = TeamHours {
        utc_offset_minutes: 9 * 60,
        ..TeamHours::default()
    };
    assert!(!within_hours(&tokyo, monday_10)); // 19:00 in Tokyo
}

#[test]
fn upset_and_sensitive_go_first_then_the_longest_waiting() {
    let q = queue(HandoffSettings::default());
    q.enqueue(waiting("old", "general", 0, 1)).unwrap();
    q.enqueue(waiting("new", "general", 0, 2)).unwrap();
    q.enqueue(waiting("upset", "general", 2, 3)).unwrap();
    assert_eq!(q.queued(), ids(&["upset", "old", "new"]));
    assert_eq!(q.position(&"new".into()).unwrap().0, 3);
}

#[test]
fn assignment_goes_to_the_least_loaded_agent_of_the_team_within_capacity() {
    let q = queue(HandoffSettings::default());
    let _a = q.connect(agent("ann", &["billing"], 2));
    let _b = q.connect(agent("bob", &["billing"], 1));
    let _c = q.connect(agent("cat", &["orders"], 5));
    for (i, id) in ["c1", "c2", "c3", "c4"].iter().enumerate() {
        q.enqueue(waiting(id, "billing", 0, i as i64)).unwrap();
    }
    let assigned: Vec<(String, String)> = q
        .dispatch(10)
        .into_iter()
        .map(|(w, a)| (w.conversation_id.to_string(), a.id.to_string()))
        .collect();
    let expected =
        [("c1", "ann"), ("c2", "bob"), ("c3", "ann")].map(|(c, a)| (c.to_string(), a.to_string()));
    assert_eq!(assigned, expected);
    assert_eq!(q.queued(), ids(&["c4"]), "nobody of billing has room left");
    assert_eq!(
        q.claim(&"c1".into(), &agent("cat", &[], 5), 11)
            .unwrap_err(),
        ClaimError::AlreadyClaimed
    );
}

#[test]
fn a_restored_entry_counts_the_alerts_it_missed_and_its_holder_finds_it_on_connecting() {
    let settings = HandoffSettings {
        pickup_timeout_seconds: 10.0,
        ..HandoffSettings::default()
    };
    let q = queue(settings);
    let held = Holding {
        agent: agent("ann", &[], 1),
        assigned_at: 0,
        awaiting_reply_since: None,
        responded: true,
        entry: waiting("held", "general", 0, 0),
    };
    let now = 35_000;
    q.restore(
        vec![waiting("old", "general", 1, 0)],
        vec![held],
        vec![4_000, 6_000],
        now,
    );
    assert_eq!(
        q.position(&"old".into()),
        Some((1, 5)),
        "the wait estimate is back"
    );
    let connected = |_: &ConversationId| true;
    assert!(
        q.due(now, connected).unpicked.is_empty(),
        "missed alerts are not sent at once"
    );
    assert_eq!(q.due(40_000, connected).unpicked, [("old".into(), 40)]);
    assert_eq!(q.snapshot(10).0[0].1.priority, 1 + 3 + 1);
    let _ann = q.connect(agent("ann", &[], 1));
    assert_eq!(
        q.claim(&"old".into(), &agent("ann", &[], 1), now)
            .unwrap_err(),
        ClaimError::AtCapacity,
        "the restored chat counts against Ann's capacity"
    );
}

#[test]
fn only_an_online_agent_of_the_team_makes_a_person_available() {
    let q = queue(HandoffSettings::default());
    let _orders = q.connect(agent("cat", &["orders"], 5));
    assert_eq!(q.available("billing", 0), Err(Unavailable::NoAgentOnline));
    let ann = q.connect(agent("ann", &["billing"], 1));
    q.set_presence(&"ann".into(), Presence::Away);
    assert_eq!(q.available("billing", 0), Err(Unavailable::NoAgentOnline));
    q.set_presence(&"ann".into(), Presence::Online);
    assert_eq!(q.available("billing", 0), Ok(()));
    drop(ann);
    assert_eq!(q.available("billing", 0), Err(Unavailable::NoAgentOnline));
}

#[test]
fn the_queue_is_bounded_overall_and_per_client_address() {
    let q = Queue::new(
        HandoffSettings::default(),
        Caps {
            max_queued: 3,
            per_address: 2,
        },
    );
    let from = |id: &str, ip: [u8; 4]| Waiting {
        origin: Some(IpAddr::from(ip)),
        ..waiting(id, "general", 0, 0)
    };
    q.enqueue(from("a1", [10, 0, 0, 1])).unwrap();
    q.enqueue(from("a2", [10, 0, 0, 1])).unwrap();
    assert_eq!(
        q.enqueue(from("a3", [10, 0, 0, 1])),
        Err(QueueFull::Address)
    );
    q.enqueue(from("b1", [10, 0, 0, 2])).unwrap();
    assert_eq!(
        q.enqueue(from("c1", [10, 0, 0, 3])),
        Err(QueueFull::Overall)
    );
    q.put_back(from("d1", [10, 0, 0, 4]));
    assert_eq!(
        q.queued().len(),
        4,
        "a conversation a person had goes back regardless"
    );
}

#[test]
fn agents_are_told_each_change_once_in_order_with_positions() {
    let q = queue(HandoffSettings::default());
    q.enqueue(waiting("a", "general", 0, 1)).unwrap();
    q.enqueue(waiting("b", "general", 0, 2)).unwrap();
    let mut told = Vec::new();
    q.tell_changes(|c| told.push(c.clone()));
    let upserted: Vec<(u32, String)> = told[0]
        .upserted
        .iter()
        .map(|(p, w)| (*p, w.conversation_id.to_string()))
        .collect();
    assert_eq!(upserted, [(1, "a".into()), (2, "b".into())]);
    assert_eq!(told[0].total, 2);
    q.tell_changes(|_| panic!("nothing changed since"));
    q.customer_wrote(&"b".into(), "hello again", 5);
    q.claim(&"a".into(), &agent("ann", &[], 3), 6).unwrap();
    q.tell_changes(|c| told.push(c.clone()));
    assert_eq!(told[1].removed, ids(&["a"]));
    assert_eq!(told[1].upserted[0].0, 1, "b moved up");
    assert_eq!(told[1].upserted[0].1.preview, "hello again");
}

#[test]
fn the_reply_timer_runs_for_the_whole_chat_and_a_gone_agent_loses_chats_after_the_grace() {
    let settings = HandoffSettings {
        reply_timeout_seconds: 10.0,
        disconnect_grace_seconds: 30.0,
        ..HandoffSettings::default()
    };
    let q = queue(settings);
    let ann = q.connect(agent("ann", &[], 3));
    q.enqueue(waiting("c", "general", 0, 0)).unwrap();
    q.claim(&"c".into(), &agent("ann", &[], 3), 0).unwrap();
    let c = ConversationId::from("c");
    let connected = |_: &ConversationId| true;
    assert!(q.agent_replied(&c), "the first reply");
    assert!(!q.agent_replied(&c));
    assert!(
        q.due(100_000, connected).unanswered.is_empty(),
        "the agent had the last word"
    );
    q.customer_wrote(&c, "are you there?", 100_000);
    assert!(q.due(105_000, connected).unanswered.is_empty());
    assert_eq!(q.due(110_000, connected).unanswered, ids(&["c"]));
    q.agent_replied(&c);
    drop(ann);
    let left = now_ms_for_test();
    assert!(q.due(left + 29_000, connected).deserted.is_empty());
    assert_eq!(q.due(left + 31_000, connected).deserted, ids(&["c"]));
    let _back = q.connect(agent("ann", &[], 3));
    assert!(
        q.due(left + 60_000, connected).deserted.is_empty(),
        "back in time"
    );
}

#[test]
fn a_queued_customer_who_stays_away_is_abandoned_after_the_timeout() {
    let settings = HandoffSettings {
        abandon_after_seconds: 60.0,
        pickup_timeout_seconds: 0.0,
        ..HandoffSettings::default()
    };
    let q = queue(settings);
    q.enqueue(waiting("c", "general", 0, 0)).unwrap();
    let away = |_: &ConversationId| false;
    assert!(
        q.due(1_000, away).abandoned.is_empty(),
        "the clock starts now"
    );
    assert!(
        q.due(30_000, |_| true).abandoned.is_empty(),
        "came back: the clock stops"
    );
    assert!(q.due(40_000, away).abandoned.is_empty());
    assert_eq!(q.due(100_000, away).abandoned, ids(&["c"]));
    assert!(q.abandon(&"c".into()).is_some());
    assert!(q.queued().is_empty());
}

/// The guard records the real time an agent left.
fn now_ms_for_test() -> i64 {
    crate::clock::now_ms()
}

#[test]
fn every_entry_is_timed_here_whichever_node_queued_it_and_a_resync_keeps_the_timers_progress() {
    let settings = HandoffSettings {
        pickup_timeout_seconds: 1.0,
        abandon_after_seconds: 10.0,
        disconnect_grace_seconds: 5.0,
        ..HandoffSettings::default()
    };
    let q = queue(settings);
    q.enqueue(waiting("mine", "general", 0, 0)).unwrap();
    q.queued_elsewhere(waiting("theirs", "general", 0, 0));
    assert_eq!(q.queued(), ids(&["mine", "theirs"]));
    // The node that runs the timers times both (whichever node queued them).
    let due = q.due(1_000, |_| true);
    let mut unpicked: Vec<&str> = due.unpicked.iter().map(|(c, _)| c.as_str()).collect();
    unpicked.sort();
    assert_eq!(unpicked, ["mine", "theirs"]);
    // Neither customer has a socket here; node n2 says the customer of "theirs" is on it.
    q.staff_elsewhere("n2".into(), Vec::new(), vec!["theirs".into()], 1_500);
    assert!(q.due(1_600, |_| false).abandoned.is_empty());
    assert_eq!(q.due(11_600, |_| false).abandoned, ids(&["mine"]));
    // Another node's agent took "theirs": on n2 they count as connected; when n2 stops telling,
    // they are gone from then, and the grace runs from that moment.
    let bob = agent("bob", &[], 3);
    q.taken_elsewhere(waiting("theirs", "general", 0, 0), bob.clone(), 12_000);
    q.staff_elsewhere(
        "n2".into(),
        vec![(bob, Presence::Online)],
        Vec::new(),
        12_000,
    );
    q.agent_replied(&"theirs".into());
    let gone = 12_000 + STAFF_HOLDS_MS;
    assert!(q.due(gone - 1, |_| true).deserted.is_empty());
    assert!(
        q.due(gone, |_| true).deserted.is_empty(),
        "the grace starts"
    );
    assert!(q.due(gone + 4_999, |_| true).deserted.is_empty());
    assert_eq!(q.due(gone + 5_000, |_| true).deserted, ids(&["theirs"]));
    q.left_elsewhere(&"theirs".into());
    assert_eq!(q.holder_id(&"theirs".into()), None);
    // Read again from the store: an entry this copy had keeps its alerts; a new one starts.
    q.replace(
        vec![
            waiting("mine", "general", 0, 0),
            waiting("new", "general", 0, 0),
        ],
        Vec::new(),
        60_000,
    );
    let due = q.due(60_000, |_| true);
    let mut unpicked: Vec<(&str, i64)> =
        due.unpicked.iter().map(|(c, s)| (c.as_str(), *s)).collect();
    unpicked.sort();
    assert_eq!(unpicked, [("mine", 60), ("new", 60)]);
    // One alert per tick that found it due: seven ticks so far.
    assert_eq!(q.waiting(&"mine".into()).unwrap().alerts, 7);
    assert_eq!(q.waiting(&"new".into()).unwrap().alerts, 1);
}
