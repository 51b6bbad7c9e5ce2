//! Does a message build on the conversation so far? A follow-up ("and the box that already
//! shipped?", "can you put our VAT number on it too") is searched together with the previous
//! question ([`super::Bot::answer_in`]), and the same article answering it again is no sign that
//! the first answer failed (the escalation policy's repeat rule).

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

/// How many questions a thread of follow-ups reaches back: the last one, and up to two it built on.
const THREAD_QUESTIONS: usize = 3;

/// What a new message is searched together with: the customer's last question (`questions`: the
/// questions to the bot since the last small talk, oldest first), and, while each builds on the one
/// before it ([`refers_back`]), those before it, up to three in all. So "lol ok. where do i switch
/// it on" after "0 opens on my older emails?" and "so if i turn it on now it only counts from now
/// on?" is searched with both, not only with the second, which names no topic of its own.
pub fn thread(questions: &[&str]) -> Option<String> {
    let (last, earlier) = questions.split_last()?;
    let mut thread = vec![*last];
    for q in earlier.iter().rev() {
        let newest = thread[0];
        if thread.len() >= THREAD_QUESTIONS || !refers_back(newest) {
            break;
        }
        thread.insert(0, q);
    }
    Some(thread.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_reaches_back_while_each_question_builds_on_the_one_before() {
        let topic = "my stats say 0 opens on all my older emails, is something broken?";
        let so = "hmm ok so if i turn it on now it only counts from now on?";
        assert_eq!(
            thread(&[topic, so]).as_deref(),
            Some(format!("{topic}\n{so}").as_str())
        );
        // A question that stands alone starts the thread.
        let new_topic = "how do i change the sender address of my newsletter";
        assert_eq!(thread(&[topic, so, new_topic]).as_deref(), Some(new_topic));
        // At most three questions.
        let four = [
            "how do i pause my deliveries",
            "and for how long?",
            "is that free?",
            "and then?",
        ];
        assert_eq!(
            thread(&four).as_deref(),
            Some("and for how long?\nis that free?\nand then?")
        );
        assert_eq!(thread(&[]), None);
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
