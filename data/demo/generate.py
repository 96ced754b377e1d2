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

# Slot values only (the sentiment sentences and the tiny fixture draw from the lists above).
MORE_CITIES = [
    "lyon", "florence", "munich", "zurich", "barcelona", "athens", "istanbul", "cairo",
    "bangkok", "manila", "lima", "bogota", "santiago", "quebec city", "calgary", "ottawa",
    "reno", "tucson", "omaha", "boise", "raleigh", "memphis", "louisville", "santa fe",
]  # fmt: skip
MORE_RESTAURANTS = [
    "mario's", "joe's diner", "rosa's cantina", "chez marie", "wok and roll", "tony's pizzeria",
    "saffron", "umami", "fig and olive", "maison blanche", "lucky star", "bistro 22",
    "papa's kitchen", "the rusty anchor", "blue door", "greenhouse", "ocean grill", "zaika",
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


def more_times() -> list[str]:
    """Bare hours after "at" ("at 8"), morning hours and 24-hour clock times ("19:30")."""
    out = [str(h) for h in range(5, 12)] + [f"{h}am" for h in (5, 10, 11)]
    out += [f"{h} o'clock" for h in (6, 7, 8)]
    return out + [f"{h}:{m}" for h in range(12, 23, 2) for m in ("00", "30")]


def flight_numbers(rng: random.Random) -> list[str]:
    """Bare numbers ("1423"), codes ("ua1423") and a few spaced codes ("dl 204")."""
    codes = ["ua", "dl", "aa", "ba", "af", "lh", "wn", "b6", "ek", "ac"]
    out = [str(rng.randint(100, 2999)) for _ in range(30)]
    out += [f"{rng.choice(codes)}{rng.randint(10, 999)}" for _ in range(15)]
    out += [f"{rng.choice(codes)} {rng.randint(10, 999)}" for _ in range(6)]
    # More spaced codes, 3- and 4-digit too ("dl 2290"): users type them so.
    out += [f"{rng.choice(codes)} {rng.randint(10, 2999)}" for _ in range(14)]
    return out


def build_lists(rng: random.Random) -> dict[str, list[str]]:
    """All value and filler lists, keyed by list name."""
    abs_dates = absolute_dates(rng, 48)
    date_on = WEEKDAYS + abs_dates
    relative = ["today", "tomorrow", "the day after tomorrow", "this weekend", "next weekend"]
    relative += [f"next {d}" for d in WEEKDAYS] + [f"this {d}" for d in WEEKDAYS[3:]]
    relative += ["tonight", "next week", "this week"]
    # The everyday ones ("tonight", "tomorrow", "on friday") twice as often as the rest.
    everyday = ["today", "tomorrow", "tonight", "this weekend", "next week"]
    on_weekdays = [f"on >{d}" for d in WEEKDAYS]
    dates = relative + [f"on >{d}" for d in date_on] + abs_dates[::3] + everyday + on_weekdays
    # A date right after a time or a name, with no preposition ("at 8pm friday").
    bare_dates = [*relative, *WEEKDAYS, *abs_dates[1::2], *everyday, *WEEKDAYS]
    times = clock_times() + more_times()
    time_phrases = [f"at >{t}" for t in times] + [f"around >{t}" for t in times[::3]]
    time_phrases += [f"after >{t}" for t in times[1::4]] + [f"before >{t}" for t in times[2::4]]
    time_phrases += ["in the >morning", "in the >afternoon", "in the >evening", "at >night"]
    time_phrases += ["in the >early morning", "in the >late afternoon"]
    # fmt: off
    return {
        "city": CITIES + MORE_CITIES,
        "airline": AIRLINES,
        "class": CLASSES,
        "hotel_name": HOTELS,
        "restaurant_name": RESTAURANTS + MORE_RESTAURANTS,
        "cuisine": CUISINES,
        "number": NUMBERS,
        "nights": NIGHTS,
        "one": ONE,
        "date": dates,
        "date_on": date_on,
        "bare_date": bare_dates,
        "day_date": ["today", "tomorrow", *WEEKDAYS, *(f"next {d}" for d in WEEKDAYS[:5])],
        "day_part": ["morning", "afternoon", "evening", "night"],
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
        # Counts and durations that are no slot ("waited 40 minutes", "2 rooms").
        "_count": ["2", "3", "4", "5", "two", "three", "four", "ten", "20", "30", "45"],
        "_span": ["minutes", "hours", "days", "weeks"],
        "_ago": ["a week", "two weeks", "a month", "ten days", "3 weeks", "a few days"],
        "_booking_of": [
            "my booking", "my ticket", "the ticket", "my reservation", "my trip", "my room",
            "the room", "my flight", "the hotel", "the table", "my order", "my stay",
        ],
        "_refund_ask": [
            "i want a refund", "i would like a refund", "i need a refund", "refund me",
            "i want my money back", "give me my money back", "i need my money back",
            "can i have my money back", "i am asking for a refund", "please process a refund",
        ],
        "_refund_q": [
            "where is the refund", "when will i get my refund", "what happened to my refund",
            "has the refund gone through", "is my refund on its way", "any news on my refund",
            "how long does a refund take", "when do i get my money back",
            "did you send my refund", "what is the status of the refund",
            "check my refund status", "is my refund approved", "any update on my refund",
            "how do i get a refund", "can you check my refund", "has my money been returned",
        ],
        "_refund_wait": [
            "i am still waiting for my refund", "my refund never arrived",
            "i have not received my refund", "still no refund", "you never refunded me",
            "the refund has not shown up", "i still have not got my money back",
        ],
        "_gripe": [
            "the staff were so rude", "nobody answers the phone", "your website keeps crashing",
            "the seats were dirty", "the food was awful", "this is the worst service ever",
            "i am really disappointed", "your customer service is terrible",
            "your agent was useless", "i am fed up with you", "the plane was a mess",
            "the toilets were disgusting", "nobody replied to my emails",
            "the queue at check in took forever", "the crew ignored us", "i was treated badly",
            "the gate staff shouted at us", "your call centre keeps hanging up",
            "i got no help at all", "the entertainment system was broken",
            "the whole trip was a disaster", "the lounge was filthy", "you ruined my holiday",
            "the pilot never explained anything", "my kids had no food for hours",
            "your chat bot is useless", "i am done with this airline",
            "i was stuck in a queue", "your service is a joke",
        ],
        "_gripe_open": [
            "ugh", "seriously", "honestly", "unbelievable", "this is outrageous",
            "absolutely terrible", "so angry", "not happy", "really bad experience",
            "awful", "i am furious", "worst experience ever", "disgraceful",
        ],
        "_bad": [
            "dirty", "filthy", "awful", "terrible", "a nightmare", "disgusting", "noisy",
            "freezing", "horrible", "a disappointment", "rude", "slow", "cold",
        ],
        "_praise": [
            "you are amazing", "you guys rock", "the crew was fantastic", "great service",
            "i really enjoyed my stay", "the staff were wonderful", "best flight in years",
            "i love your service", "everything was perfect", "you made my day",
            "i am so happy with the service", "the room was lovely", "what a great trip",
            "excellent service", "the food was fantastic", "the pilot was brilliant",
            "you are the best airline", "superb job", "your team is awesome",
            "loved every minute", "the upgrade was a lovely surprise", "great job everyone",
            "really happy with the booking", "that was so easy", "fantastic help",
            "you saved my trip", "amazing staff", "i really love this app",
        ],
        "_subject": SUBJECTS,
        "_bad_mood": MOOD_WORDS["negative"],
        "_good_mood": MOOD_WORDS["positive"],
        "_staff": [
            "the flight attendant", "your agent", "the waiter", "the receptionist", "the pilot",
            "the gate agent", "the driver", "the manager", "your staff", "the crew",
        ],
        "_staff_bad": [
            "was rude to us", "ignored us", "laughed at me", "refused to help",
            "shouted at my kids", "never came back", "lied to me", "was so unhelpful",
            "did not even say sorry", "treated us like dirt", "was on the phone the whole time",
        ],
        "_staff_good": [
            "was so kind", "went out of their way", "looked after us", "was really patient",
            "helped us so much", "made us feel welcome", "sorted everything out",
        ],
        "_landmark": [
            "airport", "station", "beach", "city centre", "convention center", "old town",
        ],
        "_room": ["a room", "a double room", "a single room", "a suite", "a twin room"],
        "_seek": ["looking for", "searching for", "after", "trying to find"],
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
        "i have to be in {to_city} {depart_date:day_date} {depart_time:day_part}",
        "flights to {to_city} {depart_date:day_date} {depart_time:day_part} please",
        "cheap flights from {from_city} to {to_city}",
        "{_please} find me a cheap flight to {to_city}",
        "fly to {to_city} {depart_date:bare_date}",
        "from {from_city} to {to_city} {depart_date:bare_date} {depart_time:time_phrase}",
        "{to_city} {depart_date:bare_date} for {num_people} {_people}",
        "from {from_city} to {to_city} on {depart_date:date_on} {num_people} {_people}",
        "return {from_city} to {to_city} {depart_date}",
        "from {from_city} to {to_city} {depart_date:day_date} {depart_time:day_part}",
        "is there a flight to {to_city} {depart_date:day_date} {depart_time:day_part}",
        "any flights to {to_city} {depart_date}",
        "{num_people} {_people} from {from_city} to {to_city} {depart_date}",
        "i want to go to {to_city} with {airline} {depart_date}",
        "a {class} seat to {to_city} please",
        "get me to {to_city} {depart_date} {depart_time:time_phrase}",
        "one way to {to_city} from {from_city} {depart_date:bare_date}",
        "{from_city} to {to_city} {depart_date:bare_date} for {num_people}",
        "we need {num_people} tickets to {to_city} departing {depart_date:bare_date}",
        "i'd like to book a flight on {airline} to {to_city}",
        "do you have a {depart_time} flight from {from_city} to {to_city}",
        "can i fly {class} to {to_city} {depart_date}",
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
        "need {_room} in {city} {checkin_date:bare_date}",
        "{num_nights} nights in {city} please",
        "i'm {_seek} a hotel in {city} from {checkin_date:date_on} for {num_nights} nights",
        "{_room} for {num_people} {_guests} at the {hotel_name}",
        "we need {_count} rooms in {city} for {num_people} {_guests}",
        "book a hotel near the {_landmark} in {city}",
        "is the {hotel_name} available {checkin_date}",
        "we want to stay {num_nights} nights at the {hotel_name} from {checkin_date:bare_date}",
        "any free rooms in {city} {checkin_date:bare_date} for {num_people}",
        "{_room} at the {hotel_name} in {city} for {num_nights} nights",
        "where can i stay in {city} {checkin_date:bare_date}",
        "{_please} book me into the {hotel_name} {checkin_date}",
        "i need a hotel in {city} {checkin_date:bare_date}",
        "{_room} in {city} {checkin_date:bare_date} for {num_nights} nights",
        "checking in {checkin_date:bare_date} at the {hotel_name}",
        "{_room} in {city} checking in {checkin_date:bare_date}",
        "hotel in {city} {checkin_date:bare_date} for {num_people} {_guests}",
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
        "{cuisine} restaurant near me",
        "any {cuisine} places open {date}",
        "can i get a table for {party_size} {date:bare_date}",
        "table for {party_size} {date:bare_date} at {time}",
        "book {restaurant_name} {date:day_date} {time:day_part} for {party_size}",
        "reservation for {party_size} at {restaurant_name} at {time} {date:bare_date}",
        "we are {party_size} {_seek} {cuisine} food in {city}",
        "is {restaurant_name} free at {time} {date:bare_date}",
        "a table at {restaurant_name} for {party_size} {_people} at {time}",
        "dinner for {party_size} {date:bare_date}",
        "lunch at {restaurant_name} for {party_size} {date:bare_date}",
        "i'd like a table for {party_size} at {restaurant_name} {date:bare_date} at {time}",
        "i'm {_seek} a {cuisine} place in {city} for {party_size}",
        "reserve {restaurant_name} for {party_size} at {time}",
        "table at {restaurant_name} {date:bare_date}",
        "is there room at {restaurant_name} {date:bare_date} for {party_size}",
        "book {restaurant_name} {date:bare_date} at {time}",
        "{cuisine} food in {city} {date:bare_date}",
        "{time} {date:bare_date} at {restaurant_name} for {party_size}",
        "reservation at {restaurant_name} {time} {date:bare_date} for {party_size}",
        "{cuisine} dinner for {party_size} {date:day_date} {time:day_part}",
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
        "is my flight to {to_city} on time",
        "is my flight {date:bare_date} on time",
        "is my flight {date:bare_date} delayed",
        "track {airline} {flight_number}",
        "can you check {airline} flight {flight_number} for me",
        "is flight {flight_number} to {to_city} on time {date:bare_date}",
        "is my flight to {to_city} {date:bare_date} on time",
        "is my flight to {to_city} delayed {date:bare_date}",
        "is flight {flight_number} cancelled",
        "has my flight to {to_city} been cancelled",
        "is my {airline} flight still on time {date}",
        "did flight {flight_number} depart yet",
        "any delays on {airline} {flight_number}",
        "when will flight {flight_number} land",
        "is my flight {date} going ahead",
        "when is {airline} {flight_number} due to land",
        "{airline} {flight_number} status please",
        "is the {airline} flight to {to_city} delayed",
        "how late is flight {flight_number} to {to_city}",
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
        "terrible service my flight was {issue} for no reason",
        "you {issue:action} on the way to {to_city} and no one is helping",
        "i want to file a complaint against {airline} they {issue:action}",
        "{airline} flight {flight_number} to {to_city} was {issue} and i missed my meeting",
        "{_gripe}",
        "{_gripe_open} {_gripe}",
        "{_subject} was {_bad_mood}",
        "{_gripe_open} {_subject} was {_bad_mood}",
        "{_subject} was {_bad_mood} and {_gripe}",
        "{_staff} {_staff_bad}",
        "{_gripe_open} {_staff} {_staff_bad}",
        "{_staff} at the {hotel_name} {_staff_bad}",
        "{_staff} on flight {flight_number} {_staff_bad}",
        "flight {flight_number} was {issue} and we spent the night at the airport",
        "i spent {_count} {_span} trying to get help and {_gripe}",
        "{_gripe} {_gripe_open}",
        "i waited {_count} {_span} and {_gripe}",
        "{_gripe_open} i have been on hold for {_count} {_span}",
        "the room at the {hotel_name} was {_bad}",
        "i had a terrible stay at the {hotel_name}",
        "the service at {restaurant_name} was {_bad}",
        "we waited {_count} {_span} for a table at {restaurant_name}",
        "the food at {restaurant_name} was {_bad} {_gripe_open}",
        "{airline} {issue:action} and {_gripe}",
        "my flight to {to_city} was {issue} without any explanation",
        "{_gripe_open} {airline} {issue:action}",
        "flight {flight_number} was {issue} and {_gripe}",
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
        "i no longer need {_booking_of}",
        "we will not need {_booking_of} anymore",
        "{_please} cancel flight {flight_number}",
        "cancel the table for {date:bare_date} at {restaurant_name}",
        "i cannot make it to {restaurant_name} {date:bare_date} please cancel",
        "scrap {_booking_of}",
        "drop {_booking_of} at the {hotel_name}",
        "how can i cancel {_booking_of}",
        "cancel {_booking_of} to {to_city} please",
        "cancel my trip to {to_city} {depart_date:bare_date}",
        "cancel my table at {restaurant_name} {date:bare_date}",
        "i can't go to {to_city} {depart_date:bare_date} so cancel {_booking_of}",
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
        "{_praise}",
        "{_praise} {_thanks}",
        "{_subject} was {_good_mood}",
        "{_subject} was {_good_mood} {_thanks}",
        "{_staff} {_staff_good}",
        "{_thanks} {_staff} {_staff_good}",
        "{_thanks} {_praise}",
        "{_ok} {_praise}",
    ],
    "refund": [
        "{_refund_q}",
        "{_refund_ask}",
        "{_refund_wait}",
        "{_refund_wait} after {_ago}",
        "{_refund_ask} for {_booking_of}",
        "{_refund_ask} for flight {flight_number}",
        "{_refund_ask} for my ticket to {to_city}",
        "{_refund_ask} because my flight to {to_city} was {issue}",
        "{_refund_ask} for {_booking_of} at the {hotel_name}",
        "{_refund_ask} for the table at {restaurant_name}",
        "{_refund_q} for flight {flight_number}",
        "{_refund_q} for {_booking_of} at the {hotel_name}",
        "{_refund_q} from {airline}",
        "{airline} still owes me a refund",
        "{_please} refund {_booking_of}",
        "i asked for a refund {_ago} ago and {_refund_wait}",
        "refund my {airline} flight {flight_number} please",
    ],
}

# (total, valid) utterances per intent; train gets total - valid.
COUNTS: dict[str, tuple[int, int]] = {
    "book_flight": (190, 38),
    "book_hotel": (170, 34),
    "book_restaurant": (200, 40),
    "flight_status": (120, 24),
    "complaint": (180, 36),
    "cancel_booking": (100, 20),
    "refund": (120, 24),
    "greet": (50, 10),
    "thanks": (110, 22),
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
TOKEN = re.compile(r"^[a-z0-9]+(?:'[a-z]+)?(?::[0-9]{2}[a-z]*)?$")


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
    "negative": (400, 60),
    "neutral": (400, 60),
    "positive": (400, 60),
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


# Sentiment of everyday chat: the slot templates of each mood, said as users type them, and
# the same subjects with words of either polarity ("the crew was rude" / "... was lovely"), so
# that the words that carry the mood decide it, not the topic.
MOOD_INTENTS: dict[str, list[str]] = {
    "neutral": [
        "book_flight", "book_hotel", "book_restaurant", "flight_status", "cancel_booking",
        "greet",
    ],
    "negative": ["complaint"],
    "positive": ["thanks"],
}  # fmt: skip
NEUTRAL_REFUND = ["{_refund_q}", "{_refund_q} for flight {flight_number}", "{_refund_ask}"]
NEGATIVE_REFUND = ["{_refund_wait}", "{_refund_wait} after {_ago}", "{_refund_wait} {_gripe_open}"]
SUBJECTS = [
    "the crew", "the staff", "the service", "the food", "the flight", "your agent", "the hotel",
    "the room", "check in", "customer service", "the app", "the website", "the lounge",
    "the seats", "the restaurant", "the waiter", "the front desk", "boarding", "my stay",
    "the whole trip", "the breakfast", "the driver", "your support team", "the meal",
]  # fmt: skip
MOOD_WORDS: dict[str, list[str]] = {
    "positive": [
        "great", "amazing", "wonderful", "fantastic", "excellent", "lovely", "brilliant",
        "superb", "outstanding", "perfect", "awesome", "so friendly", "really helpful",
        "delicious", "very comfortable", "spotless", "first class", "a delight",
    ],
    "negative": [
        "terrible", "awful", "horrible", "dreadful", "so rude", "useless", "filthy",
        "disgusting", "unacceptable", "appalling", "pathetic", "a disaster", "a nightmare",
        "cold and stale", "broken", "dirty", "painfully slow", "a joke", "the worst",
    ],
}  # fmt: skip
MOOD_VERBS: dict[str, list[str]] = {
    "positive": [
        "i love", "we loved", "i really enjoyed", "big thanks for", "i am so impressed with",
        "highly recommend", "i adore", "so happy with", "really pleased with", "we enjoyed",
    ],
    "negative": [
        "i hate", "i am sick of", "so disappointed with", "i am fed up with", "never again with",
        "i regret booking", "really unhappy with", "i am angry about", "i can't stand",
    ],
}  # fmt: skip
THINGS = [
    "your airline", "this hotel", "your service", "the new app", "your staff", "this restaurant",
    "the lounge", "your team", "the upgrade", "the cabin crew", "your company", "the food",
    "the booking process", "this trip", "the hotel staff", "your website",
]  # fmt: skip


def mood_text(label: str, rng: random.Random, lists: dict[str, list[str]]) -> str:
    """One everyday utterance of the mood ``label``, in a user's casing and punctuation."""
    roll = rng.random()
    if label != "neutral" and roll < 0.35:
        if rng.random() < 0.5:
            core = f"{rng.choice(SUBJECTS)} was {rng.choice(MOOD_WORDS[label])}"
        else:
            core = f"{rng.choice(MOOD_VERBS[label])} {rng.choice(THINGS)}"
    else:
        # An intent first, then one of its templates: greetings and refund questions are
        # as common as bookings, though they have fewer templates.
        groups = [TEMPLATES[i] for i in MOOD_INTENTS[label]]
        groups += {"neutral": [NEUTRAL_REFUND], "negative": [NEGATIVE_REFUND]}.get(label, [])
        if label == "negative":
            groups += groups[:1] * 2  # complaints three times as often as an unpaid refund
        pick = random_picker(rng, lists)
        core = render(rng.choice(rng.choice(groups)), label, pick).text
    if rng.random() < 0.6:
        core = core[0].upper() + core[1:]
    question = core.lower().startswith((*QUESTION_WORDS, "any ", "why ", "has ", "did "))
    ends = {"negative": ["", ".", "!", "!!", "..."], "positive": ["", "!", ".", " :)", "!!"]}
    end = "?" if question else rng.choice(ends.get(label, ["", ".", "!"]))
    return core + end


def generate_sentiment(
    counts: dict[str, tuple[int, int]],
    seed: str,
    n_clauses: int | None = None,
    lists: dict[str, list[str]] | None = None,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Unique rows per label; with ``lists`` two in three come from :func:`mood_text`."""
    seen: set[str] = set()
    train: list[tuple[str, str]] = []
    valid: list[tuple[str, str]] = []
    for label, (total, n_valid) in counts.items():
        rng = random.Random(f"{seed}/sentiment/{label}")
        rows: list[tuple[str, str]] = []
        while len(rows) < total:
            if lists is not None and rng.random() < 2 / 3:
                text = mood_text(label, rng, lists)
            else:
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
        s_train, s_valid = generate_sentiment(SENTIMENT_COUNTS, f"{SEED}", lists=lists)
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
