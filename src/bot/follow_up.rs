//! Does a message build on the conversation so far? A follow-up ("and the box that already
//! shipped?", "can you put our VAT number on it too") is searched together with the previous
//! question and the ones it built on ([`thread`], [`super::Bot::answer_in`]), and the same
//! article answering it again is no sign that the first answer failed (the escalation policy's
//! repeat rule).

/// Openings and words of a message that builds on the previous answer rather than asking the same
/// question again: "and the box that already shipped?", "can you put our VAT number on it too".
const FOLLOW_UP_OPENINGS: &[&str] = &[
    "and",
    "also",
    "what about",
    "how about",
    "what if",
    "does that",
    "does this",
    "will that",
    "will this",
    "is that",
    "then",
    "but what",
    "but how",
    "ok and",
    "okay and",
    "so",
];

/// Words anywhere in a message that add to what was asked before.
const FOLLOW_UP_WORDS: &[&str] = &["too", "also", "as well", "another", "else", "instead"];

/// Whether `text` builds on the previous question (a follow-up) rather than asking it again: the
/// same article answering it is then no sign that the answer failed.
pub fn follow_up(text: &str) -> bool {
    let w = crate::nlu::phrase_text(text);
    FOLLOW_UP_OPENINGS
        .iter()
        .any(|p| w.starts_with(&format!(" {p} ")))
        || FOLLOW_UP_WORDS.iter().any(|p| crate::nlu::has_words(&w, p))
}

/// Words that point back at what was just talked about.
const POINTING_BACK: &[&str] = &["it", "that", "this", "those", "them", "they", "one"];

/// Whether `text` builds on the previous message rather than standing alone: a follow-up's
/// opening or words ([`follow_up`]), a word pointing back ("how often should i clean it"), or
/// only a content word or two ("and for canada?").
pub fn refers_back(text: &str) -> bool {
    if follow_up(text) {
        return true;
    }
    let lower = text.to_lowercase();
    let pointing = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .any(|w| POINTING_BACK.contains(&w));
    pointing || crate::kb::words(text).count() <= 2
}

/// How many questions a thread holds: the one that named the topic and the latest ones.
const THREAD_QUESTIONS: usize = 3;

/// How long the questions before the previous one may be together, in characters: the combined
/// search is one embedding of at most 256 tokens, cut at the end, and the new message comes last.
const THREAD_CHARS: usize = 600;

/// The questions a new message's thread reaches back to before the previous question, oldest
/// first: while each question builds on the one before it ([`refers_back`]), the one before it,
/// back to the question that named the topic (the first that stands alone). `questions`: the
/// customer's questions to the bot since the last small talk or hand-off, oldest first, the
/// previous question last. Of a longer thread the topic's question and the latest are kept, up
/// to three questions with the previous one, and as many earlier ones as fit in
/// [`THREAD_CHARS`]; a question repeated (the same words again, as after a pick among the
/// choices) counts once. So "lol ok. where do i switch it on" after "0 opens on my older
/// emails?" and "so if i turn it on now it only counts from now on?" is searched with both, not
/// only with the second, which names no topic of its own.
pub fn thread<'q>(questions: &[&'q str]) -> Vec<&'q str> {
    // The previous question first, back to the one that named the topic.
    let mut chain: Vec<&str> = Vec::new();
    for &q in questions.iter().rev() {
        match chain.last() {
            Some(&newer) if newer == q => {}
            Some(&newer) if !refers_back(newer) => break,
            _ => chain.push(q),
        }
    }
    let Some((&topic, between)) = chain.get(1..).and_then(<[&str]>::split_last) else {
        return Vec::new();
    };
    if topic.chars().count() > THREAD_CHARS {
        return Vec::new();
    }
    // The topic's question, then the nearest of those between, as many as there is room for.
    let mut chars = topic.chars().count();
    let mut nearest: Vec<&str> = Vec::new();
    for &q in between.iter().take(THREAD_QUESTIONS.saturating_sub(2)) {
        chars += q.chars().count();
        if chars > THREAD_CHARS {
            break;
        }
        nearest.push(q);
    }
    std::iter::once(topic)
        .chain(nearest.into_iter().rev())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_reaches_back_to_the_question_that_named_the_topic() {
        let topic = "my stats say 0 opens on all my older emails, is something broken?";
        let so = "hmm ok so if i turn it on now it only counts from now on?";
        // The previous question is `so`; it builds on `topic`.
        assert_eq!(thread(&[topic, so]), [topic]);
        // A previous question that stands alone starts the thread: nothing before it.
        let new_topic = "how do i change the sender address of my newsletter";
        assert!(thread(&[topic, so, new_topic]).is_empty());
        assert!(thread(&[topic]).is_empty());
        assert!(thread(&[]).is_empty());
        // A longer thread keeps the topic's question and the latest.
        let pause = "how do i pause my deliveries";
        let five = [
            pause,
            "and for how long?",
            "is that free?",
            "and then?",
            "and after that?",
        ];
        assert_eq!(thread(&five), [pause, "and then?"]);
        // The same question twice (asked, then a pick among the choices) counts once.
        assert_eq!(thread(&[topic, so, so]), [topic]);
        // A long topic question that does not fit is left out, with what it led to.
        let long = "x".repeat(THREAD_CHARS + 1);
        assert!(thread(&[long.as_str(), "and then?", "is that free?"]).is_empty());
    }

    #[test]
    fn a_follow_up_builds_on_the_last_answer_and_a_rephrase_does_not() {
        for text in [
            "and the box that already shipped, do i still get it?",
            "can you put our VAT number on it too",
            "what about the order i placed yesterday",
            "does that also change my next delivery?",
        ] {
            assert!(follow_up(text), "{text:?}");
        }
        for text in [
            "how do i get an invoice",
            "i asked how to cancel, not how to pause",
            "where can i download the receipt",
        ] {
            assert!(!follow_up(text), "{text:?}");
        }
    }

    #[test]
    fn a_message_that_points_back_or_says_little_refers_back() {
        for text in [
            "and the box that already shipped, do i still get it?",
            "how often am i supposed to clean it properly",
            "does that also change the order i placed yesterday?",
            "what about canada",
        ] {
            assert!(refers_back(text), "{text:?}");
        }
        for text in [
            "how do i change where my boxes go",
            "do you accept paypal? finance doesnt want the company card on file",
        ] {
            assert!(!refers_back(text), "{text:?}");
        }
    }
}
