"""Word lists of the built-in semantic-cache verifier (general English, not tuned to any data set).

FUNCTION_WORDS carry a prompt's grammar, not its subject: two prompts that differ only in them
ask the same thing. The other lists name what changes an answer: numbers, dates, negations,
opposites; SYNONYMS folds common near-synonyms together so that rewording is not a difference.
"""

from __future__ import annotations

from typing import Final


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _list(text: str, sep: str | None = None) -> list[str]:
    return text.split(sep)


FUNCTION_WORDS: Final = _words(
    """
    a an the this that these those some any each every all both either another other such
    i me my mine myself you your yours yourself we us our ours he him his she her hers it its they
    them their theirs one ones someone something anyone anything everyone everything
    what which who whom whose when where why how whether
    is am are was were be been being do does did doing done have has had having
    can could should would will shall might must may ought
    to of in on at by for from with about into onto over under through between among
    as than then so too very really just quite rather also only even still yet already ever
    and or but if because while though although since unless until
    there here now again once
    please thanks thank hi hello hey ok okay kindly
    get got gets getting go goes going went let lets make makes made
    need needs want wants wanna like know tell explain say show help
    best good better great way ways thing things kind sort type lot lots much many more most
    possible actually exactly generally usually typically basically
    question quick simple simply
    """
)

NEGATIONS: Final = _words("not no never none nothing nobody nowhere neither nor without cannot non")

CONTRACTIONS: Final = {
    "can't": "can not", "cant": "can not", "won't": "will not", "wont": "will not",
    "don't": "do not", "dont": "do not", "doesn't": "does not", "doesnt": "does not",
    "didn't": "did not", "didnt": "did not", "isn't": "is not", "isnt": "is not",
    "aren't": "are not", "arent": "are not", "wasn't": "was not", "wasnt": "was not",
    "weren't": "were not", "shouldn't": "should not", "shouldnt": "should not",
    "wouldn't": "would not", "wouldnt": "would not", "couldn't": "could not", "couldnt": "could not",
    "haven't": "have not", "hasn't": "has not", "hadn't": "had not", "mustn't": "must not",
    "what's": "what is", "whats": "what is", "where's": "where is", "who's": "who is",
    "how's": "how is", "that's": "that is", "it's": "it is", "there's": "there is",
    "i'm": "i am", "im": "i am", "i've": "i have", "i'd": "i would", "i'll": "i will",
    "you're": "you are", "we're": "we are", "they're": "they are", "let's": "let us",
}  # fmt: skip

NUMBER_WORDS: Final = {
    w: str(i)
    for i, w in enumerate(
        _list(
            "zero _ two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
            "sixteen seventeen eighteen nineteen twenty"
        )
    )
    if w != "_"  # "one" is far more often a pronoun ("which one") than a count
} | {
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80",
    "ninety": "90", "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000",
    "dozen": "12", "twice": "2",
}  # fmt: skip

MONTHS: Final = {
    **{m: m for m in _list("january february march april june july august september october november december")},
    "jan": "january", "feb": "february", "mar": "march", "apr": "april", "jun": "june", "jul": "july",
    "aug": "august", "sep": "september", "sept": "september", "oct": "october", "nov": "november",
    "dec": "december",
}  # fmt: skip
MONTH_CUES: Final = _words(
    "in of on since until till by early late mid next last this before after during through"
)
WEEKDAYS: Final = {
    **{d: d for d in _list("monday tuesday wednesday thursday friday saturday sunday")},
    **{d + "s": d for d in _list("monday tuesday wednesday thursday friday saturday sunday")},
}
TIME_WORDS: Final = {
    **{w: w for w in _list("today tonight tomorrow yesterday weekend weekends morning afternoon evening")},
    **{w: w for w in _list("overnight midnight noon spring summer autumn winter weekday weekdays")},
    **{w: w for w in _list("christmas easter thanksgiving halloween ramadan")},
    "mornings": "morning",
    "evenings": "evening",
    "summers": "summer",
    "winters": "winter",
}
PERIODS: Final = _words("week weeks month months year years weekend summer winter spring season")
RELATIVE: Final = _words("next last this past coming previous")

STRICT_QUESTIONS: Final = _words("who when where why")
"""Question words that ask for different kinds of answer (a time, a place, a reason, a person)."""

IRREGULAR: Final = {
    "children": "child", "men": "man", "women": "woman", "people": "person", "feet": "foot",
    "teeth": "tooth", "mice": "mouse", "geese": "goose", "bought": "buy", "ran": "run", "ate": "eat",
    "eaten": "eat", "wrote": "write", "written": "write", "took": "take", "taken": "take",
    "gave": "give", "given": "give", "began": "begin", "begun": "begin", "grew": "grow",
    "grown": "grow", "froze": "freeze", "frozen": "freeze", "lost": "lose", "sold": "sell",
    "paid": "pay", "spent": "spend", "sent": "send", "built": "build", "kept": "keep",
    "slept": "sleep", "left": "leave", "found": "find", "forgot": "forget", "forgotten": "forget",
}  # fmt: skip

SYNONYM_GROUPS: Final = [
    group.split()
    for group in _list(
        """
    buy purchase | fix repair mend | solve resolve | begin start commence | finish complete
    big large huge | small little tiny | fast quick rapid speedy | cheap inexpensive affordable
    car automobile | movie film | phone cellphone smartphone mobile | kid child | doctor physician
    shop store | trip journey voyage | picture photo photograph image | delete remove erase
    find locate | require need | utilize use | choose pick select | speak talk | ill sick
    sofa couch settee | rubbish trash garbage | holiday vacation | flat apartment | price cost
    fee charge | answer reply response | recommend suggest | describe explain
    stop halt cease quit | difficult hard | easy simple | correct right | wrong incorrect
    smart clever intelligent | money cash | email mail | site website | app application
    pc computer | tv television | fridge refrigerator | bike bicycle | plane airplane aeroplane
    medicine medication | learn study | boost improve | method technique approach
    tip advice suggestion | job occupation | error mistake | lorry truck | autumn fall | tall high
    """,
        "|",
    )
]
"""Words that reword rather than change a question; `terms` folds each group onto its first word."""

OPPOSITES: Final = [
    tuple(pair.split("/"))
    for pair in _list(
        """
    with/without before/after more/less most/least up/down in/out on/off over/under above/below
    inside/outside left/right north/south east/west first/last early/late old/new hot/cold
    warm/cool high/low big/small large/small long/short fast/slow cheap/expensive best/worst
    good/bad buy/sell add/remove open/close start/stop begin/end enable/disable install/uninstall
    import/export upload/download send/receive push/pull win/lose increase/decrease raise/lower
    accept/reject allow/block lock/unlock encrypt/decrypt connect/disconnect join/leave
    subscribe/unsubscribe arrive/depart arrival/departure input/output male/female man/woman
    day/night light/dark heavy/light wet/dry full/empty true/false positive/negative plus/minus
    love/hate like/dislike agree/disagree safe/dangerous rich/poor young/old maximum/minimum
    max/min top/bottom front/back forward/backward sunrise/sunset create/delete login/logout
    hire/fire borrow/lend give/take pass/fail gain/lose profit/loss deposit/withdraw
    include/exclude internal/external incoming/outgoing ascending/descending
    uppercase/lowercase minimize/maximize compress/decompress freeze/thaw sweet/sour raw/cooked
    """
    )
]
"""Pairs of words whose swap changes the answer (compared as stems)."""

SYMMETRIC: Final = _words("vs versus between compare compared comparison and or differ difference different")
"""Words that make a question symmetric: "A vs B" asks what "B vs A" asks."""

NEGATING_PREFIXES: Final = ("un", "dis", "in", "im", "il", "ir", "non", "de", "anti", "mis")
