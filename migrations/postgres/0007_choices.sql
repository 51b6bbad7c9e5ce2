-- Postgres dialect of ../0007_choices.sql (the same schema; the counter is BIGINT).
-- Choices (issue 14): every "Which of these is it?" the bot sent, with the customer's question and
-- the options in the order offered, and what the customer picked with a button. Editors read it in
-- the gaps report: which questions needed a choice, and which article customers meant.
CREATE TABLE choices (
    conversation_id    TEXT NOT NULL REFERENCES conversations(id),
    -- The bot message that offered the options.
    seq                BIGINT NOT NULL,
    question           TEXT NOT NULL,
    -- JSON, in the order offered: [{"passage": "billing/charged-twice.md#refunds", "label": "..."}].
    options            TEXT NOT NULL,
    -- The passage picked last; NULL with a `picked_at` is "None of these".
    picked             TEXT,
    -- When a button was last pressed; NULL while none was.
    picked_at          BIGINT,
    -- How many times a button of this message was pressed.
    picks              BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
CREATE INDEX choices_created ON choices (created_at);
