//! What a message on a sensitive topic asks of the company: information the knowledge base may
//! give ("do subscriptions renew automatically?", "i want to quit the subscription"), an act only
//! a person can carry out ("cancel it for me, now", "i want my money back"), or a report of
//! something gone wrong with the account or the money ("someone logged into my account", "a
//! charge i never agreed to").
//!
//! An intent's `always_human` policy is the operator's word that such matters reach a person. It
//! stays that for acts and incidents; a question the knowledge base answers is answered first, with
//! the offer of a person, and handed over when the base cannot answer it (see
//! [`Policy::before_bot`](super::Policy::before_bot)). Read from the words alone, so the same rule
//! holds on any help centre and for any intent an operator marks sensitive.

/// What the message asks of the company.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// A question, or a wish the customer can carry out with the right article.
    Information,
    /// Asks the company to act: the words that say so.
    Action(&'static str),
    /// Reports something wrong that someone must look into: the words that say so.
    Incident(&'static str),
}

impl Request {
    /// Whether a person must take it, whatever the knowledge base says.
    pub fn needs_a_person(self) -> bool {
        !matches!(self, Request::Information)
    }

    /// In words, for the reasons an agent reads.
    pub fn describe(self) -> String {
        match self {
            Request::Information => "asks for information".into(),
            Request::Action(cue) => format!("asks the company to act (\"{cue}\")"),
            Request::Incident(cue) => format!("reports an incident (\"{cue}\")"),
        }
    }
}

/// Something wrong that a person must look into, whatever the question around it.
const INCIDENT: &[&str] = &[
    "hacked",
    "hacker",
    "hackers",
    "hacking",
    "not me",
    "wasn't me",
    "wasnt me",
    "was not me",
    "unauthorised",
    "unauthorized",
    "didn't authorise",
    "didn't authorize",
    "didnt authorise",
    "didnt authorize",
    "did not authorise",
    "did not authorize",
    "never authorised",
    "never authorized",
    "never agreed",
    "never signed up",
    "never ordered",
    "never made",
    "didn't make",
    "didnt make",
    "did not make",
    "stolen",
    "stole",
    "compromised",
    "suspicious",
    "fraud",
    "fraudulent",
    "phishing",
    "scam",
    "scammed",
    "identity theft",
    "data breach",
    "leaked",
    "dispute",
    "chargeback",
    "charge back",
];

/// Who, in "someone logged into my account".
const STRANGERS: &[&str] = &[
    "someone",
    "somebody",
    "some one",
    "a stranger",
    "an intruder",
];

/// What a stranger did, in an incident report (not "how do i give someone access").
const STRANGER_DID: &[&str] = &[
    "else", "has", "is", "was", "logged", "log", "signed", "sign", "accessed", "used", "changed",
    "got", "made", "bought", "ordered", "tried", "keeps", "took", "stole", "hacked", "broke",
];

/// Verbs of what only the company can do with an account or a payment.
const ACT_VERBS: &[&str] = &[
    "cancel",
    "refund",
    "close",
    "delete",
    "remove",
    "stop",
    "end",
    "terminate",
    "unsubscribe",
    "reset",
    "unlock",
    "block",
    "freeze",
    "reverse",
    "restore",
    "deactivate",
    "disable",
    "erase",
    "wipe",
    "void",
    "credit",
    "reimburse",
    "undo",
    "transfer",
    "process",
    "issue",
    "return",
    "change",
    "fix",
];

/// Verbs that, opening a message, can only be an order ("cancel my subscription"); not those that
/// open a question as nouns as often ("refund policy?", "return label", "credit card declined").
const ORDERS: &[&str] = &[
    "cancel",
    "close",
    "delete",
    "remove",
    "stop",
    "terminate",
    "unsubscribe",
    "reset",
    "unlock",
    "deactivate",
    "disable",
    "erase",
    "wipe",
    "reimburse",
    "undo",
    "reverse",
    "freeze",
];

/// Asking the company to do it, in so many words.
const ACT_PHRASES: &[&str] = &[
    "for me",
    "on my behalf",
    "do it",
    "do this",
    "do that",
    "i need you to",
    "i want you to",
    "you need to",
    "you must",
    "you have to",
    "i demand",
    "i insist",
    "right now",
    "immediately",
    "asap",
    "right away",
    "straight away",
    "money back",
    "i want a refund",
    "i want my",
    "i need a refund",
    "i need my",
    "i'd like a refund",
    "i would like a refund",
    "give me",
    "send me my",
    "refund me",
    "reimburse me",
    "credit me",
];

/// Words said before the request itself ("hi, please cancel …").
const OPENERS: &[&str] = &[
    "hi", "hello", "hey", "there", "ok", "okay", "so", "um", "please", "pls", "plz", "kindly",
    "just", "yes", "yeah",
];

/// Askers of a favour: "could you cancel …".
const ASKERS: &[&str] = &[
    "can you",
    "could you",
    "would you",
    "will you",
    "can u",
    "could u",
];

/// The customer as the subject of a sentence.
const WE: &[&str] = &["i", "we"];

/// Whether `phrase` is in `w` (a [`crate::nlu::phrase_text`]) and `own` holds of every
/// occurrence, given the words before it, nearest first.
fn every_occurrence<'a>(
    w: &'a str,
    phrase: &str,
    own: impl Fn(&mut dyn Iterator<Item = &'a str>) -> bool,
) -> bool {
    let needle = format!(" {phrase} ");
    let mut found = false;
    for (at, _) in w.match_indices(&needle) {
        if !own(&mut w[..at].split_whitespace().rev()) {
            return false;
        }
        found = true;
    }
    found
}

/// Whether every "do it / this / that" (`phrase`) in `w` is the customer's own act: "can i do
/// that from my dashboard", "how do we do this", "i'll do it myself"; not "can you do that for
/// me", nor a message with both.
fn the_customer_does(w: &str, phrase: &str) -> bool {
    const WILL: &[&str] = &["i'll", "we'll", "i'd", "we'd"];
    const MAY: &[&str] = &["can", "could", "should", "will", "would", "just"];
    if !phrase.starts_with("do ") {
        return false;
    }
    every_occurrence(w, phrase, |before| {
        let before: Vec<&str> = before.take(2).collect();
        match before.as_slice() {
            [last, ..] if WE.contains(last) || WILL.contains(last) => true,
            [may, who] => MAY.contains(may) && WE.contains(who),
            _ => false,
        }
    })
}

/// Whether every "money back" (`phrase`) in `w` asks whether the customer can have it: "can i
/// get my money back?", "can i still get my money back", "so i can get money back for it?",
/// "would we get our money back if…"; not "i want my money back", "if i don't get my money back
/// today…", "i will get my money back one way or another", nor a refund promised and not given
/// ("i was told i could get my money back"). The refund policy answers such a question (with the
/// offer of a person); a demand or a complaint goes to a person.
fn asks_whether(w: &str, phrase: &str) -> bool {
    // Opening a question: "can i get", "do we get", "would i get".
    const ASK: &[&str] = &[
        "can", "could", "do", "does", "will", "would", "may", "might",
    ];
    // After the subject, only "can" and "could" ask ("so i can get"); "i will get" is a vow.
    const ABLE: &[&str] = &["can", "could"];
    // Said of what someone else told the customer: a complaint, not a question.
    const TOLD: &[&str] = &[
        "told", "said", "promised", "was", "were", "assured", "thought",
    ];
    const WHOSE: &[&str] = &["my", "our", "the", "some", "any", "all", "a", "of"];
    const SOFTLY: &[&str] = &[
        "still", "also", "even", "possibly", "please", "ever", "actually",
    ];
    if phrase != "money back" {
        return false;
    }
    every_occurrence(w, phrase, |before| {
        let mut before = before.peekable();
        while before.next_if(|t| WHOSE.contains(t)).is_some() {}
        before.next() == Some("get") && {
            while before.next_if(|t| SOFTLY.contains(t)).is_some() {}
            match (before.next(), before.next(), before.next()) {
                (Some(who), Some(ask), _) if WE.contains(&who) && ASK.contains(&ask) => true,
                (Some(able), Some(who), told) => {
                    ABLE.contains(&able)
                        && WE.contains(&who)
                        && !told.is_some_and(|t| TOLD.contains(&t))
                }
                _ => false,
            }
        }
    })
}

fn find(w: &str, phrases: &[&'static str]) -> Option<&'static str> {
    phrases
        .iter()
        .copied()
        .find(|p| crate::nlu::has_words(w, p))
}

/// What `text` asks of the company (see [`Request`]).
pub fn read(text: &str) -> Request {
    let w = crate::nlu::phrase_text(text);
    if let Some(cue) = find(&w, INCIDENT) {
        return Request::Incident(cue);
    }
    for who in STRANGERS {
        for did in STRANGER_DID {
            if w.contains(&format!(" {who} {did} ")) {
                return Request::Incident(who);
            }
        }
    }
    let ordered = |p: &&str| {
        crate::nlu::has_words(&w, p) && !the_customer_does(&w, p) && !asks_whether(&w, p)
    };
    if let Some(cue) = ACT_PHRASES.iter().copied().find(ordered) {
        return Request::Action(cue);
    }
    // "could you (please) cancel", "please refund": a favour asked of the company.
    for asker in ASKERS.iter().chain(&["please", "pls", "kindly"]) {
        for verb in ACT_VERBS {
            for between in ["", "please ", "just "] {
                if w.contains(&format!(" {asker} {between}{verb} ")) {
                    return Request::Action(verb);
                }
            }
        }
    }
    // An order: the message opens with the verb ("cancel my subscription").
    let first = w
        .split_whitespace()
        .find(|word| !OPENERS.contains(word))
        .unwrap_or_default();
    if let Some(verb) = ORDERS.iter().copied().find(|v| *v == first) {
        return Request::Action(verb);
    }
    Request::Information
}

/// Whether `text` builds on the previous question (see [`crate::bot::follow_up`]).
pub use crate::bot::follow_up;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_and_self_service_wishes_ask_for_information() {
        for text in [
            "i want to quit the subscription",
            "do subscriptions renew automatically",
            "theres white chalky stuff building up inside",
            "a colleague left the company, how do i remove their access to our dashboards",
            "can i see a log of who changed our site settings",
            "how do i give someone access to my dashboard",
            "can you tell me how to cancel my plan?",
            "what happens to my data when i close my account",
            "How do I cancel? please help",
            "refund policy for opened bags?",
            "return label for the grinder, where do i find it",
            "credit card was charged twice this month, why",
            "they also want this month refunded. can i do that from inside buttondown?",
            "how do we do this for the whole team",
            "no need, i'll do it myself from the settings",
            "we can do that ourselves, where is the button",
            "bought sync 3 days ago by mistake, can i get my money back",
            "oh nice so i can get money back for it? do i have to post it back",
            "would we get our money back if we cancel in the first week?",
            "can i still get my money back if i opened it",
        ] {
            assert_eq!(read(text), Request::Information, "{text:?}");
        }
    }

    #[test]
    fn asking_the_company_to_act_is_an_action() {
        for text in [
            "I want to cancel, do it for me",
            "the renewal went through by mistake, can you do that refund today",
            "can you do that or should i do that myself",
            "cancel it for me, now",
            "Cancel my subscription",
            "hi, please cancel my subscription",
            "could you please refund the last charge",
            "i want my money back",
            "honestly great service. if i dont get my money back today it goes on twitter",
            "give me my money back",
            "can i get my money back or do i have to give you my money back",
            "i will get my money back one way or another",
            "you told me i would get my money back",
            "i was told i could get my money back",
            "I want a refund for the grinder",
            "close my account immediately",
        ] {
            assert!(
                matches!(read(text), Request::Action(_)),
                "{text:?}: {:?}",
                read(text)
            );
        }
    }

    #[test]
    fn a_compromised_account_or_an_unknown_charge_is_an_incident() {
        for text in [
            "my account was hacked",
            "someone logged into my account from another country, how do i stop them",
            "there's a payment on my card that i never agreed to",
            "I think my password was stolen",
            "there is an order on my account that wasn’t me",
        ] {
            assert!(
                matches!(read(text), Request::Incident(_)),
                "{text:?}: {:?}",
                read(text)
            );
            assert!(read(text).needs_a_person());
        }
        assert!(!read("how do i turn on two-factor login").needs_a_person());
    }
}
