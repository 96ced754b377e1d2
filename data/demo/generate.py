#!/usr/bin/env python3
"""Generate the slotfill demo data set (and the tiny test fixtures) from templates.

Everything here was written for this project; no line is taken from any external corpus.
The output is deterministic: the same script always writes byte-identical files.

Usage (from the repository root):

    python data/demo/generate.py                     # data/demo/{train,valid,sentiment}
    python data/demo/generate.py --tiny tests/data/tiny_slots
    python data/demo/generate.py --tiny-sentiment tests/data/tiny_sentiment

Slot data is written in the ATIS/SNIPS folder format: `seq.in` (lower-case tokens),
`seq.out` (one BIO tag per token) and `label` (intent), one utterance per line.
Sentiment data is a TSV with the header `text<TAB>label`.
"""

from __future__ import annotations

import argparse
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

SEED = 20240611
HERE = Path(__file__).resolve().parent

# --------------------------------------------------------------------------------------------
# Value lists.  An entry "prefix >value" emits the prefix tokens tagged O and the value tokens
# tagged B-/I- (e.g. "on >june fourteenth" -> on/O june/B-date fourteenth/I-date).
# --------------------------------------------------------------------------------------------

CITIES = [
    "new york", "san francisco", "los angeles", "las vegas", "salt lake city", "san diego",
    "new orleans", "kansas city", "saint louis", "fort lauderdale", "san jose", "el paso",
    "mexico city", "hong kong", "buenos aires", "rio de janeiro", "cape town", "tel aviv",
    "denver", "boston", "chicago", "seattle", "atlanta", "dallas", "houston", "miami",
    "phoenix", "portland", "austin", "detroit", "minneapolis", "philadelphia", "pittsburgh",
    "baltimore", "nashville", "orlando", "tampa", "charlotte", "cleveland", "milwaukee",
    "sacramento", "honolulu", "anchorage", "toronto", "montreal", "vancouver", "london",
    "paris", "rome", "madrid", "berlin", "amsterdam", "dublin", "lisbon", "tokyo", "seoul",
    "sydney", "singapore", "dubai", "oslo", "vienna", "prague",
]  # fmt: skip

AIRLINES = [
    "united", "delta", "american airlines", "southwest", "jetblue", "alaska airlines",
    "british airways", "air france", "lufthansa", "klm", "emirates", "qantas", "air canada",
    "spirit", "frontier", "ryanair", "easyjet", "turkish airlines", "singapore airlines",
    "iberia", "aer lingus", "hawaiian airlines",
]  # fmt: skip

CLASSES = [
    "economy", "business", "business class", "first class", "premium economy", "coach",
    "economy plus",
]  # fmt: skip

HOTELS = [
    "hilton", "marriott", "hyatt regency", "holiday inn", "best western", "four seasons",
    "ritz carlton", "grand plaza", "harbor view inn", "maple lodge", "sunset suites",
    "riverside hotel", "park lane hotel", "royal oak inn", "blue lagoon resort",
    "city center hotel", "golden gate lodge", "seaside motel", "mountain view resort",
    "old mill inn", "lakeshore suites", "hotel bellavista", "crown towers", "silver birch lodge",
    "westin", "sheraton", "radisson blu", "pine hollow bed and breakfast",
]  # fmt: skip

RESTAURANTS = [
    "la piazza", "golden dragon", "blue fin sushi", "olive tree", "green curry house",
    "taco loco", "le petit bistro", "casa lupe", "smoke and oak", "nonna rosa",
    "bombay palace", "sakura garden", "pho saigon", "little athens", "el toro",
    "seoul kitchen", "harvest table", "red lantern", "copper pot", "mama mia",
    "kebab corner", "spice route", "dim sum palace", "oyster bar", "bella notte",
    "tandoori nights", "burger barn", "noodle box",
]  # fmt: skip

CUISINES = [
    "italian", "chinese", "thai", "mexican", "indian", "japanese", "sushi", "french",
    "korean", "vietnamese", "greek", "spanish", "ethiopian", "lebanese", "barbecue",
    "seafood", "vegan", "vegetarian", "steak", "middle eastern", "dim sum", "tapas", "pizza",
    "ramen",
]  # fmt: skip

NUMBER_WORDS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve"]
NUMBERS = [*NUMBER_WORDS, "2", "3", "4", "5", "6", "7", "8", "10", "12"]
NIGHTS = [*NUMBERS, "fourteen", "14"]
ONE = ["one", "1"]

ISSUE_STATES = [
    "cancelled", "delayed", "delayed for five hours", "delayed overnight", "overbooked",
    "diverted", "cancelled at the last minute", "rescheduled without notice",
]  # fmt: skip
ISSUE_ACTIONS = [
    "lost my bag", "lost my luggage", "lost my suitcase", "damaged my bag", "broke my stroller",
    "charged me twice", "bumped me off the flight", "downgraded my seat", "misplaced my luggage",
    "cancelled my ticket",
]  # fmt: skip

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = [
    ("january", 31), ("february", 28), ("march", 31), ("april", 30), ("may", 31),
    ("june", 30), ("july", 31), ("august", 31), ("september", 30), ("october", 31),
    ("november", 30), ("december", 31),
]  # fmt: skip
_UNITS = [
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
]  # fmt: skip
_TEENS = [
    "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
    "seventeenth", "eighteenth", "nineteenth",
]  # fmt: skip
_TWENTIES = [f"twenty {u}" for u in _UNITS]
ORDINAL_WORDS = [*_UNITS, *_TEENS, "twentieth", *_TWENTIES, "thirtieth", "thirty first"]


def ordinal_digits(day: int) -> str:
    """1 -> 1st, 22 -> 22nd, 13 -> 13th."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def absolute_dates(rng: random.Random, count: int) -> list[str]:
    """Calendar dates in four spoken forms: "june fourteenth", "may 3rd", "the 3rd of may", ..."""
    out: list[str] = []
    for i in range(count):
        month, days = MONTHS[i % len(MONTHS)]
        day = rng.randint(1, days)
        form = i % 4
        if form == 0:
            out.append(f"{month} {ORDINAL_WORDS[day - 1]}")
        elif form == 1:
            out.append(f"{month} {ordinal_digits(day)}")
        elif form == 2:
            out.append(f"the {ordinal_digits(day)} of {month}")
        else:
            out.append(f"the {ORDINAL_WORDS[day - 1]} of {month}")
    return out


def clock_times() -> list[str]:
    """Spoken clock times: "7pm", "7 pm", "7:30pm", "7:30", "noon", "half past seven", ..."""
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    words += ["eleven", "twelve"]
    out = ["noon", "midnight"]
    for h in range(1, 13):
        out += [f"{h}pm", f"{h} pm", f"{h}:30pm", f"{h}:30"]
        if h in (6, 7, 8, 9):
            out += [f"{h}am", f"{h} am", f"{h}:15", f"{h}:45 pm", f"half past {words[h - 1]}"]
            out += [f"{words[h - 1]} thirty"]
    return out


def flight_numbers(rng: random.Random) -> list[str]:
    """Bare numbers ("1423"), codes ("ua1423") and a few spaced codes ("dl 204")."""
    codes = ["ua", "dl", "aa", "ba", "af", "lh", "wn", "b6", "ek", "ac"]
    out = [str(rng.randint(100, 2999)) for _ in range(30)]
    out += [f"{rng.choice(codes)}{rng.randint(10, 999)}" for _ in range(15)]
    out += [f"{rng.choice(codes)} {rng.randint(10, 999)}" for _ in range(6)]
    return out


def build_lists(rng: random.Random) -> dict[str, list[str]]:
    """All value and filler lists, keyed by list name."""
    abs_dates = absolute_dates(rng, 48)
    date_on = WEEKDAYS + abs_dates
    relative = ["today", "tomorrow", "the day after tomorrow", "this weekend", "next weekend"]
    relative += [f"next {d}" for d in WEEKDAYS] + [f"this {d}" for d in WEEKDAYS[3:]]
    dates = relative + [f"on >{d}" for d in date_on] + abs_dates[::3]
    times = clock_times()
    time_phrases = [f"at >{t}" for t in times] + [f"around >{t}" for t in times[::3]]
    time_phrases += [f"after >{t}" for t in times[1::4]] + [f"before >{t}" for t in times[2::4]]
    time_phrases += ["in the >morning", "in the >afternoon", "in the >evening", "at >night"]
    time_phrases += ["in the >early morning", "in the >late afternoon"]
    # fmt: off
    return {
        "city": CITIES,
        "airline": AIRLINES,
        "class": CLASSES,
        "hotel_name": HOTELS,
        "restaurant_name": RESTAURANTS,
        "cuisine": CUISINES,
        "number": NUMBERS,
        "nights": NIGHTS,
        "one": ONE,
        "date": dates,
        "date_on": date_on,
        "time": times,
        "time_phrase": time_phrases,
        "flight_number": flight_numbers(rng),
        "state": ISSUE_STATES,
        "action": ISSUE_ACTIONS,
        # Fillers (names start with "_"): tagged O.
        "_please": ["please", "can you", "could you", "would you"],
        "_people": ["people", "passengers", "adults", "of us"],
        "_guests": ["people", "guests", "adults", "of us"],
        "_booking": [
            "booking", "reservation", "trip", "ticket", "hotel room", "table", "flight",
            "order", "hotel booking", "dinner reservation",
        ],
        "_greet": [
            "hi", "hello", "hey", "hiya", "howdy", "greetings", "good morning",
            "good afternoon", "good evening", "hey hey", "yo", "hello hello",
        ],
        "_addr": ["there", "assistant", "bot", "everyone", "friend", "team"],
        "_followup": [
            "how are you", "can you help me", "anyone there", "i need some help",
            "are you there", "nice to meet you", "how is it going", "what can you do",
        ],
        "_thanks": [
            "thanks", "thank you", "thanks a lot", "many thanks", "cheers", "thank you so much",
            "thanks a million", "much appreciated", "thank you very much", "ta",
        ],
        "_thanks_tail": [
            "for your help", "for the help", "that is all", "that was helpful", "have a nice day",
            "bye", "you are great", "that is perfect", "goodbye", "see you",
        ],
        "_ok": ["ok", "great", "perfect", "awesome", "lovely", "brilliant", "cool", "nice"],
    }
    # fmt: on


# Default value list of each slot when the template does not name one ({slot:list}).
SLOT_LIST = {
    "from_city": "city",
    "to_city": "city",
    "city": "city",
    "airline": "airline",
    "class": "class",
    "hotel_name": "hotel_name",
    "restaurant_name": "restaurant_name",
    "cuisine": "cuisine",
    "num_people": "number",
    "party_size": "number",
    "num_nights": "nights",
    "depart_date": "date",
    "checkin_date": "date",
    "date": "date",
    "depart_time": "time",
    "time": "time",
    "flight_number": "flight_number",
    "issue": "state",
}

# --------------------------------------------------------------------------------------------
# Templates: whitespace-separated literal tokens and whole-token placeholders {slot},
# {slot:list} or {_filler}.
# --------------------------------------------------------------------------------------------

TEMPLATES: dict[str, list[str]] = {
    "book_flight": [
        "book a flight from {from_city} to {to_city} {depart_date}",
        "i need a flight from {from_city} to {to_city} on {depart_date:date_on}",
        "find me a {class} ticket to {to_city} from {from_city}",
        "i want to fly from {from_city} to {to_city} {depart_date} {depart_time:time_phrase}",
        "book {num_people} tickets from {from_city} to {to_city}",
        "can you get me a flight to {to_city} with {airline}",
        "i would like to fly {airline} from {from_city} to {to_city} {depart_date}",
        "reserve a {class} seat on {airline} to {to_city}",
        "get {num_people} seats on the {depart_time} flight to {to_city}",
        "we are {num_people} people flying from {from_city} to {to_city} {depart_date}",
        "book me on a flight leaving {from_city} {depart_date} {depart_time:time_phrase}",
        "fly me to {to_city} {depart_date}",
        "please book a {airline} flight from {from_city} to {to_city} {depart_date}",
        "one way {class} from {from_city} to {to_city} for {num_people} {_people}",
        "purchase a {class} ticket from {from_city} to {to_city} leaving {depart_time:time_phrase}",
        "i am looking for flights to {to_city} {depart_date} {depart_time:time_phrase}",
        "{_please} book a round trip from {from_city} to {to_city}",
        "my family of {num_people} needs to fly from {from_city} to {to_city}",
        "book the {depart_time} {airline} flight to {to_city} {depart_date}",
        "i want a {class} seat from {from_city} to {to_city} on {airline}",
        "help me book a trip to {to_city} from {from_city} for {num_people} {_people}",
        "get me a flight out of {from_city} to {to_city} {depart_date}",
        "what flights go from {from_city} to {to_city} {depart_date}",
        "{_please} reserve {num_people} {class} seats to {to_city} on {depart_date:date_on}",
    ],
    "book_hotel": [
        "book a hotel in {city} for {num_nights} nights",
        "i need a room in {city} {checkin_date}",
        "reserve a room at the {hotel_name} in {city}",
        "find me a hotel in {city} for {num_people} {_guests} {checkin_date}",
        "book {num_nights} nights at the {hotel_name}",
        "i would like to stay at the {hotel_name} starting {checkin_date}",
        "can you get me a room for {num_people} in {city} checking in {checkin_date}",
        "i need a hotel room for {num_nights} nights in {city} starting {checkin_date}",
        "we need somewhere to stay in {city} for {num_people} guests",
        "any rooms available at the {hotel_name} {checkin_date}",
        "{_please} book me a double room in {city} for {num_nights} nights",
        "reserve the {hotel_name} for {num_nights} nights for {num_people} adults",
        "book a hotel near downtown {city} {checkin_date}",
        "i want to check in at the {hotel_name} in {city} {checkin_date}",
        "get a room for {num_people} at the {hotel_name}",
        "find a place to stay in {city} for {num_nights:one} night",
        "book a suite in {city} arriving {checkin_date} for {num_nights} nights",
        "{_please} find me a cheap hotel in {city}",
        "i need {num_nights} nights in {city} at the {hotel_name} for {num_people} {_guests}",
    ],
    "book_restaurant": [
        "book a table for {party_size} at {time} {date}",
        "reserve a table at {restaurant_name} for {party_size} {date}",
        "i want to eat {cuisine} food in {city} {date}",
        "find me a {cuisine} restaurant in {city}",
        "book {restaurant_name} for {party_size} people at {time}",
        "get us a table for {party_size} at {restaurant_name} {date} at {time}",
        "i need a dinner reservation for {party_size} at {time}",
        "can you book a {cuisine} place for {party_size} {date}",
        "make a reservation at {restaurant_name} in {city} at {time}",
        "table for {party_size} at {restaurant_name} please",
        "we would like to have {cuisine} {date} around {time}",
        "reserve a spot for {party_size} at a {cuisine} restaurant in {city}",
        "book a {cuisine} restaurant near me for {time}",
        "is there a table free at {restaurant_name} {date} for {party_size}",
        "i want to book dinner at {restaurant_name} {date}",
        "book lunch for {party_size} at {time} in {city}",
        "find a good {cuisine} spot in {city} for {party_size} people at {time} {date}",
        "{_please} book a table for {party_size} {date}",
    ],
    "flight_status": [
        "is {airline} flight {flight_number} on time",
        "what is the status of flight {flight_number}",
        "has flight {flight_number} landed yet",
        "is flight {flight_number} delayed {date}",
        "when does {airline} {flight_number} arrive {date}",
        "check the status of {airline} flight {flight_number} {date}",
        "what time does flight {flight_number} depart {date}",
        "track flight {flight_number} for me",
        "is my {airline} flight {flight_number} still leaving on time",
        "where is flight {flight_number} right now",
        "status of {airline} {flight_number}",
        "did {airline} flight {flight_number} take off yet",
        "give me an update on flight {flight_number} {date}",
        "which gate does {airline} flight {flight_number} leave from",
    ],
    "complaint": [
        "my flight to {to_city} was {issue} again",
        "{airline} {issue:action}",
        "you guys {issue:action} on my flight to {to_city}",
        "flight {flight_number} was {issue} and nobody told us",
        "i am furious my {airline} flight was {issue}",
        "this is the third time {airline} has {issue:action}",
        "i want to complain about flight {flight_number} to {to_city}",
        "my {airline} flight {flight_number} got {issue}",
        "the airline {issue:action} and i want compensation",
        "why was my flight to {to_city} {issue}",
        "on {airline} flight {flight_number} you {issue:action}",
        "i need a refund because my flight to {to_city} was {issue}",
        "terrible service my flight was {issue} for no reason",
        "you {issue:action} on the way to {to_city} and no one is helping",
        "i want to file a complaint against {airline} they {issue:action}",
        "{airline} flight {flight_number} to {to_city} was {issue} and i missed my meeting",
    ],
    "cancel_booking": [
        "cancel my {_booking}",
        "i want to cancel my {_booking}",
        "please cancel my flight to {to_city} {depart_date}",
        "cancel my room at the {hotel_name}",
        "cancel my table at {restaurant_name} {date}",
        "i need to cancel flight {flight_number}",
        "{_please} cancel my {_booking}",
        "{_please} call off my reservation at {restaurant_name}",
        "i no longer need the room at the {hotel_name}",
        "i changed my mind please cancel the {_booking}",
        "get rid of my {_booking} please",
        "undo my last {_booking}",
        "cancel everything i booked for {to_city}",
    ],
    "greet": [
        "{_greet}",
        "{_greet} {_addr}",
        "{_greet} {_followup}",
        "{_greet} {_addr} {_followup}",
    ],
    "thanks": [
        "{_thanks}",
        "{_thanks} {_thanks_tail}",
        "{_ok} {_thanks}",
        "{_ok} {_thanks} {_thanks_tail}",
    ],
}

# (total, valid) utterances per intent; train gets total - valid.
COUNTS: dict[str, tuple[int, int]] = {
    "book_flight": (150, 30),
    "book_hotel": (110, 22),
    "book_restaurant": (125, 25),
    "flight_status": (90, 18),
    "complaint": (110, 22),
    "cancel_booking": (65, 13),
    "greet": (50, 10),
    "thanks": (50, 10),
}

# Fixed examples that must exist (in one split or the other).
PINNED: dict[str, list[tuple[str, dict[str, str]]]] = {
    "book_restaurant": [
        ("book a table for {party_size} at {time} {date}",
         {"party_size": "two", "time": "7pm", "date": "tomorrow"}),
    ],
    "complaint": [
        ("my flight to {to_city} was {issue} again", {"to_city": "denver", "issue": "cancelled"}),
    ],
}  # fmt: skip

# Tiny fixture: a few intents and templates, short value lists, so a model trains in seconds.
TINY_TEMPLATES: dict[str, list[str]] = {
    "book_restaurant": [
        "book a table for {party_size} at {time} {date}",
        "reserve a table for {party_size} {date}",
        "table for {party_size} at {time} please",
        "i need a table for {party_size} {date} at {time}",
    ],
    "complaint": [
        "my flight to {to_city} was {issue} again",
        "my flight to {to_city} was {issue}",
        "why was my flight to {to_city} {issue}",
    ],
    "greet": TEMPLATES["greet"],
}
TINY_COUNTS: dict[str, tuple[int, int]] = {
    "book_restaurant": (33, 8),
    "complaint": (27, 7),
    "greet": (20, 5),
}
TINY_LISTS: dict[str, list[str]] = {
    "city": ["denver", "boston", "new york", "chicago", "san francisco", "miami", "seattle"],
    "number": ["two", "three", "four", "six", "2", "4", "5"],
    "time": ["7pm", "7 pm", "8pm", "7:30pm", "6:30", "noon"],
    "date": ["today", "tomorrow", "next friday", "on >saturday", "on >june fourteenth"],
    "state": ["cancelled", "delayed", "overbooked", "delayed for five hours"],
}

PLACEHOLDER = re.compile(r"^\{(\w+)(?::(\w+))?\}$")
TOKEN = re.compile(r"^[a-z0-9]+(?::[0-9]{2}[a-z]*)?$")


@dataclass(frozen=True)
class Example:
    """One tagged utterance."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    intent: str

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


Picker = Callable[[str, str], str]


def random_picker(rng: random.Random, lists: dict[str, list[str]]) -> Picker:
    """Pick a random entry of the named list."""
    return lambda _name, list_name: rng.choice(lists[list_name])


def fixed_picker(values: dict[str, str]) -> Picker:
    """Pick the given value of each placeholder."""
    return lambda name, _list_name: values[name]


def render(template: str, intent: str, pick: Picker) -> Example:
    """Fill a template; pick(slot_or_filler_name, list_name) returns the value string."""
    tokens: list[str] = []
    tags: list[str] = []
    for part in template.split():
        match = PLACEHOLDER.match(part)
        if match is None:
            tokens.append(part)
            tags.append("O")
            continue
        name = match.group(1)
        list_name = match.group(2) or (name if name.startswith("_") else SLOT_LIST[name])
        value = pick(name, list_name)
        prefix, _, core = value.rpartition(">")
        for word in prefix.split():
            tokens.append(word)
            tags.append("O")
        for i, word in enumerate(core.split()):
            tokens.append(word)
            tags.append("O" if name.startswith("_") else f"{'B' if i == 0 else 'I'}-{name}")
    return Example(tuple(tokens), tuple(tags), intent)


def generate_slots(
    templates: dict[str, list[str]],
    counts: dict[str, tuple[int, int]],
    lists: dict[str, list[str]],
    pinned: dict[str, list[tuple[str, dict[str, str]]]],
    seed: str,
) -> tuple[list[Example], list[Example]]:
    """Unique utterances per intent, split stratified into (train, valid) with no overlap."""
    seen: set[str] = set()
    train: list[Example] = []
    valid: list[Example] = []
    for intent, (total, n_valid) in counts.items():
        rng = random.Random(f"{seed}/{intent}")
        examples: list[Example] = []
        for template, values in pinned.get(intent, []):
            examples.append(render(template, intent, fixed_picker(values)))
        seen.update(e.text for e in examples)
        intent_templates = templates[intent]
        pick = random_picker(rng, lists)
        attempts = 0
        while len(examples) < total:
            attempts += 1
            if attempts > total * 500:
                raise RuntimeError(f"{intent}: templates too narrow for {total} unique utterances")
            template = intent_templates[attempts % len(intent_templates)]
            example = render(template, intent, pick)
            if example.text not in seen:
                seen.add(example.text)
                examples.append(example)
        rng.shuffle(examples)
        valid += examples[:n_valid]
        train += examples[n_valid:]
    rng = random.Random(f"{seed}/shuffle")
    rng.shuffle(train)
    rng.shuffle(valid)
    return train, valid


def write_slots(folder: Path, examples: Sequence[Example]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"seq.in": [e.text for e in examples]}
    files["seq.out"] = [" ".join(e.tags) for e in examples]
    files["label"] = [e.intent for e in examples]
    for name, lines in files.items():
        (folder / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Sentiment: customer-service utterances built from opener + clause + closer.
# --------------------------------------------------------------------------------------------

SENTIMENT: dict[str, dict[str, list[str]]] = {
    "negative": {
        "clauses": [
            "my flight to {city} was cancelled again",
            "my flight to {city} was delayed {n} hours",
            "{airline} lost my bag",
            "you lost my luggage and nobody called me back",
            "the gate agent was incredibly rude",
            "I've been on hold for over an hour",
            "I was charged twice for the same ticket",
            "the plane sat on the runway for {n} hours",
            "my seat was broken the whole flight",
            "the hotel room in {city} smelled of smoke",
            "the restaurant lost our reservation",
            "your app crashed while I was paying",
            "they overbooked flight {flight} and bumped me",
            "my suitcase arrived in {city} completely smashed",
            "the refund still hasn't arrived after {n} weeks",
            "the wifi never worked",
            "nobody told us the gate had changed",
            "the food was cold and stale",
            "customer service hung up on me twice",
            "I missed my connection in {city} because of your delay",
        ],
        "openers": [
            "", "Ugh,", "Seriously,", "Unbelievable.", "This is ridiculous.", "Not happy.",
            "Honestly,", "Again?!", "Terrible experience:", "So frustrated.",
        ],
        "closers": [
            "", "Worst airline ever.", "I want a refund.", "Never flying with you again!",
            "Fix this now.", "So disappointed.", "What a joke.", "Absolutely unacceptable.",
            "I'm done.", "Who do I complain to?",
        ],
        "ends": [".", "!", "!!", "..."],
    },
    "positive": {
        "clauses": [
            "the crew was great",
            "the flight landed early",
            "check-in took two minutes",
            "the pilot kept us informed the whole way",
            "you found my bag within an hour",
            "the upgrade to business made my day",
            "the hotel in {city} was lovely",
            "dinner at {restaurant} was amazing",
            "the agent sorted out my rebooking in minutes",
            "the seats were really comfortable",
            "boarding was smooth and on time",
            "the staff in {city} were so helpful",
            "my refund came through quickly",
            "the app made changing my flight easy",
            "the flight attendants on {airline} were wonderful",
            "the kids loved the snacks",
            "you got me to {city} on time despite the storm",
            "the room upgrade was a lovely surprise",
        ],
        "openers": [
            "", "Thanks so much,", "Thank you!", "Wow,", "Great job,", "Just wanted to say",
            "Kudos:", "Honestly,", "Big thanks,", "Amazing service!",
        ],
        "closers": [
            "", "Will fly again!", "Highly recommend.", "You made my trip.", "Keep it up!",
            "Thanks again!", ":)", "Five stars.", "Much appreciated.",
        ],
        "ends": [".", "!", "!!", " :)"],
    },
    "neutral": {
        "clauses": [
            "can I book a flight from {city} to {city2} on {day}",
            "what time does flight {flight} leave",
            "I need a hotel in {city} for {n} nights",
            "is there a vegetarian meal option",
            "how much is a checked bag",
            "please book a table for {n} at {time}",
            "do you have rooms available in {city} next week",
            "what is the baggage allowance for economy",
            "can I change my seat to an aisle",
            "where do I collect my boarding pass",
            "is flight {flight} on time",
            "I'd like to cancel my reservation for {day}",
            "what terminal does {airline} use in {city}",
            "can I bring my dog on board",
            "I want to add a bag to my booking",
            "how early should I arrive for an international flight",
            "does the hotel in {city} have parking",
            "when is check-in at the hotel",
            "book me on the {time} flight to {city}",
            "I need to update my email address",
        ],
        "openers": [
            "", "Hi,", "Hello,", "Quick question:", "Hey there,", "Excuse me,", "Hi there.",
            "Good morning,",
        ],
        "closers": [
            "", "Please advise.", "Let me know.", "I'm travelling next week.",
            "My booking reference is {ref}.", "Just checking.",
        ],
        "ends": ["."],
    },
}  # fmt: skip
QUESTION_WORDS = ("can ", "what ", "is ", "how ", "do ", "does ", "where ", "when ")
SENTIMENT_COUNTS: dict[str, tuple[int, int]] = {
    "negative": (190, 40),
    "neutral": (190, 40),
    "positive": (190, 40),
}
TINY_SENTIMENT_COUNTS: dict[str, tuple[int, int]] = {
    "negative": (27, 7),
    "neutral": (26, 6),
    "positive": (27, 7),
}


def sentiment_text(label: str, rng: random.Random, n_clauses: int | None) -> str:
    parts = SENTIMENT[label]
    clauses = parts["clauses"][:n_clauses]
    city, city2 = rng.sample([c.title() for c in CITIES], 2)
    fields = {
        "city": city,
        "city2": city2,
        "airline": rng.choice(AIRLINES).title(),
        "restaurant": rng.choice(RESTAURANTS).title(),
        "flight": f"{rng.choice(['UA', 'DL', 'BA', 'AA'])}{rng.randint(10, 2999)}",
        "n": str(rng.randint(2, 9)),
        "day": rng.choice(WEEKDAYS).title(),
        "time": rng.choice(["7pm", "7:30pm", "8 am", "noon", "6:15"]),
        "ref": "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6)),
    }
    clause = rng.choice(clauses).format(**fields)
    opener = rng.choice(parts["openers"])
    closer = rng.choice(parts["closers"]).format(**fields)
    end = "?" if clause.lower().startswith(QUESTION_WORDS) else rng.choice(parts["ends"])
    if opener == "" or opener[-1] in ".!?":
        clause = clause[0].upper() + clause[1:]
    text = " ".join(p for p in (opener, clause + end, closer) if p)
    roll = rng.random()
    if roll < 0.1:
        text = text.lower()
    elif roll < 0.13 and label == "negative":
        text = text.upper()
    return text


def generate_sentiment(
    counts: dict[str, tuple[int, int]], seed: str, n_clauses: int | None = None
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    seen: set[str] = set()
    train: list[tuple[str, str]] = []
    valid: list[tuple[str, str]] = []
    for label, (total, n_valid) in counts.items():
        rng = random.Random(f"{seed}/sentiment/{label}")
        rows: list[tuple[str, str]] = []
        while len(rows) < total:
            text = sentiment_text(label, rng, n_clauses)
            if text.lower() not in seen:
                seen.add(text.lower())
                rows.append((text, label))
        valid += rows[:n_valid]
        train += rows[n_valid:]
    rng = random.Random(f"{seed}/sentiment/shuffle")
    rng.shuffle(train)
    rng.shuffle(valid)
    return train, valid


def write_tsv(path: Path, rows: Sequence[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["text\tlabel"] + [f"{text}\t{label}" for text, label in rows]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Self-check and summary.
# --------------------------------------------------------------------------------------------


def check_slots(train: Sequence[Example], valid: Sequence[Example]) -> None:
    """Raise ValueError if the examples break the format or train and valid overlap."""
    overlap = {e.text for e in train} & {e.text for e in valid}
    if overlap:
        raise ValueError(f"train/valid overlap: {sorted(overlap)[:3]}")
    for example in [*train, *valid]:
        if not 0 < len(example.tokens) == len(example.tags):
            raise ValueError(f"token/tag count: {example}")
        previous = "O"
        for token, tag in zip(example.tokens, example.tags, strict=True):
            if not TOKEN.match(token):
                raise ValueError(f"bad token {token!r} in {example.text!r}")
            if tag.startswith("I-") and previous[2:] != tag[2:]:
                raise ValueError(f"bad BIO {tag} after {previous} in {example.text!r}")
            previous = tag


def summary(name: str, examples: Sequence[Example]) -> str:
    intents = Counter(e.intent for e in examples)
    slots = Counter(t[2:] for e in examples for t in e.tags if t.startswith("B-"))
    lines = [f"{name}: {len(examples)} utterances"]
    lines.append("  intents: " + ", ".join(f"{k}={v}" for k, v in sorted(intents.items())))
    lines.append("  slots:   " + ", ".join(f"{k}={v}" for k, v in sorted(slots.items())))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tiny", type=Path, metavar="OUT_DIR", help="write tiny slot fixture")
    parser.add_argument(
        "--tiny-sentiment", type=Path, metavar="OUT_DIR", help="write tiny sentiment fixture"
    )
    args = parser.parse_args(argv)
    lists = build_lists(random.Random(SEED))

    if args.tiny is None and args.tiny_sentiment is None:
        train, valid = generate_slots(TEMPLATES, COUNTS, lists, PINNED, f"{SEED}")
        check_slots(train, valid)
        write_slots(HERE / "train", train)
        write_slots(HERE / "valid", valid)
        print(summary("train", train))
        print(summary("valid", valid))
        s_train, s_valid = generate_sentiment(SENTIMENT_COUNTS, f"{SEED}")
        write_tsv(HERE / "sentiment" / "train.tsv", s_train)
        write_tsv(HERE / "sentiment" / "valid.tsv", s_valid)
        print(f"sentiment: train={len(s_train)} valid={len(s_valid)}")
    if args.tiny is not None:
        tiny_lists = {**lists, **TINY_LISTS}
        train, valid = generate_slots(
            TINY_TEMPLATES, TINY_COUNTS, tiny_lists, PINNED, f"{SEED}/tiny"
        )
        check_slots(train, valid)
        write_slots(args.tiny / "train", train)
        write_slots(args.tiny / "valid", valid)
        print(summary("tiny train", train))
        print(summary("tiny valid", valid))
    if args.tiny_sentiment is not None:
        s_train, s_valid = generate_sentiment(TINY_SENTIMENT_COUNTS, f"{SEED}/tiny", n_clauses=8)
        write_tsv(args.tiny_sentiment / "train.tsv", s_train)
        write_tsv(args.tiny_sentiment / "valid.tsv", s_valid)
        print(f"tiny sentiment: train={len(s_train)} valid={len(s_valid)}")


if __name__ == "__main__":
    main()
