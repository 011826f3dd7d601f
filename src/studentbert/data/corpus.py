"""A generated English-like corpus, and a labelled sentiment task written in the same words.

What it is: documents of 4-12 sentences produced by a small grammar from a fixed lexicon of about 1,100 word
types, deterministic from a seed, offline and of any size (100,000 sentences take a few seconds). It is not
real English, and no result obtained on it says anything about real English; it is a stand-in for
Wikipedia + BookCorpus that a 2-core CPU can train a small BERT on in minutes.

Why it looks the way it does: each regularity is there so that one of BERT's pretraining tasks has something
to learn, and so that the chapters can show it being learned.

* **Masked LM needs context from both sides.**

  - Subject-verb agreement across an intervening phrase whose noun has the *other* number (an "attractor"):
    ``The dogs near the old barn run every morning.`` Masking ``run`` needs ``dogs`` on the left; masking
    ``dogs`` needs ``run`` on the *right*.
  - Agreement across a relative clause (long range): ``The cakes that Anna baked last week were warm.``
  - ``a``/``an`` and ``this``/``these``, predictable only from the word that follows:
    ``Tom found an angry goose near the pond.``
  - Gender agreement between a name and later (or earlier) words: ``Tom has a sister called Emma. She ...``
    (``sister`` is predictable from ``Emma`` on its right; ``She`` from ``Emma`` on its left).

* **Next-sentence prediction is decidable.** A document has one *topic* (12 topics, each with its own
  nouns, verbs, places and adjectives), and within it a small *cast*: one or two named characters, a town,
  two kinds of agents, two places, two kinds of objects. Every sentence after the first mentions a character
  of the previous sentence, by name or by pronoun, and the sentences keep returning to the cast. A random
  second segment therefore almost always comes from another topic (11 chances in 12), talks about other
  people and shares few words with the first.

* **A sentence-level task for the later chapters** (:func:`generate_sentiment`): reviews whose polarity
  depends on negation and on contrast (``The soup was not bad.``; ``Although the film was good, the ending
  was terrible.``). The label is fully determined by the sentence (:func:`sentiment_rule` recovers it), but
  not by its bag of words (:func:`bag_of_words_baseline`). The corpus contains review sentences of the
  same grammar, so a tokenizer trained on the corpus knows every word of the task.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

# --------------------------------------------------------------------------------------------------
# Lexicon
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    """The vocabulary of one topic.

    Attributes:
        name: the topic's name (``"animals"``, ``"cooking"``, ...).
        roles: jobs a character of this topic has (``farmer``).
        agents: ``(singular, plural)`` nouns that do things (``("dog", "dogs")``).
        verbs: intransitive verbs of the agents, ``(3rd-person singular, plural, past)``.
        places: ``(singular, plural)`` nouns of places (``("barn", "barns")``).
        actions: transitive verbs of the characters, ``(3rd-person singular, plural, past)``.
        objects: ``(singular, plural)`` nouns the characters act on.
        qualities: adjectives that fit the objects.
        adjectives: adjectives that fit the agents.
        items: singular nouns that get reviewed (``soup``, ``concert``).
    """

    name: str
    roles: tuple[str, ...]
    agents: tuple[tuple[str, str], ...]
    verbs: tuple[tuple[str, str, str], ...]
    places: tuple[tuple[str, str], ...]
    actions: tuple[tuple[str, str, str], ...]
    objects: tuple[tuple[str, str], ...]
    qualities: tuple[str, ...]
    adjectives: tuple[str, ...]
    items: tuple[str, ...]


def _pairs(spec: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(w.split("/")) for w in spec.split())


def _topic(name, roles, agents, verbs, places, actions, objects, qualities, adjectives, items) -> Topic:
    return Topic(name, tuple(roles.split()), _pairs(agents), _pairs(verbs), _pairs(places), _pairs(actions),
                 _pairs(objects), tuple(qualities.split()), tuple(adjectives.split()), tuple(items.split(",")))


TOPICS: tuple[Topic, ...] = (
    _topic("animals", "farmer vet shepherd",
           "dog/dogs cat/cats horse/horses cow/cows goat/goats hen/hens duck/ducks owl/owls fox/foxes "
           "goose/geese mouse/mice lamb/lambs rabbit/rabbits",
           "runs/run/ran sleeps/sleep/slept eats/eat/ate waits/wait/waited hides/hide/hid rests/rest/rested "
           "wanders/wander/wandered",
           "barn/barns field/fields pond/ponds fence/fences stable/stables meadow/meadows orchard/orchards",
           "feeds/feed/fed brushes/brush/brushed counts/count/counted walks/walk/walked "
           "washes/wash/washed calls/call/called",
           "dog/dogs horse/horses goat/goats lamb/lambs rabbit/rabbits bucket/buckets saddle/saddles "
           "egg/eggs",
           "small big brown old heavy clean dirty",
           "hungry sleepy wild young angry lazy gentle noisy",
           "farm,milk,wool,horse show,petting zoo"),
    _topic("cooking", "cook baker chef",
           "pot/pots pan/pans kettle/kettles oven/ovens sauce/sauces pie/pies loaf/loaves",
           "cools/cool/cooled burns/burn/burned steams/steam/steamed bubbles/bubble/bubbled "
           "simmers/simmer/simmered smokes/smoke/smoked",
           "stove/stoves table/tables shelf/shelves sink/sinks window/windows cupboard/cupboards "
           "kitchen/kitchens",
           "cooks/cook/cooked washes/wash/washed peels/peel/peeled fries/fry/fried bakes/bake/baked "
           "stirs/stir/stirred",
           "egg/eggs onion/onions potato/potatoes tomato/tomatoes apple/apples cake/cakes carrot/carrots "
           "pancake/pancakes",
           "fresh ripe small big sweet raw burnt",
           "hot warm empty clean heavy salty",
           "soup,bread,stew,pie,salad,sauce,dinner,breakfast"),
    _topic("sport", "runner coach player swimmer",
           "player/players runner/runners team/teams fan/fans referee/referees athlete/athletes "
           "umpire/umpires",
           "trains/train/trained cheers/cheer/cheered jumps/jump/jumped stretches/stretch/stretched "
           "sprints/sprint/sprinted waits/wait/waited",
           "track/tracks stadium/stadiums pool/pools gym/gyms court/courts gate/gates bench/benches",
           "kicks/kick/kicked throws/throw/threw catches/catch/caught wins/win/won loses/lose/lost "
           "carries/carry/carried",
           "ball/balls racket/rackets medal/medals cup/cups whistle/whistles helmet/helmets shoe/shoes "
           "trophy/trophies",
           "new old heavy golden shiny muddy",
           "fast strong tired proud quick fit eager young",
           "match,race,game,training,final,stadium"),
    _topic("weather", "meteorologist forecaster photographer",
           "cloud/clouds storm/storms wind/winds raindrop/raindrops snowflake/snowflakes "
           "thunderstorm/thunderstorms",
           "moves/move/moved falls/fall/fell rolls/roll/rolled gathers/gather/gathered "
           "howls/howl/howled clears/clear/cleared",
           "hill/hills valley/valleys mountain/mountains roof/roofs tower/towers village/villages",
           "measures/measure/measured records/record/recorded photographs/photograph/photographed "
           "predicts/predict/predicted checks/check/checked studies/study/studied",
           "thermometer/thermometers umbrella/umbrellas barometer/barometers raincoat/raincoats "
           "kite/kites weathervane/weathervanes",
           "new old broken wet heavy useful",
           "cold icy grey dark wet strong sudden",
           "weather,forecast,summer,winter,spring,autumn"),
    _topic("travel", "traveller guide pilot driver",
           "bus/buses plane/planes tourist/tourists ferry/ferries taxi/taxis traveller/travellers "
           "passenger/passengers",
           "departs/depart/departed arrives/arrive/arrived stops/stop/stopped turns/turn/turned "
           "returns/return/returned waits/wait/waited",
           "station/stations airport/airports bridge/bridges hotel/hotels border/borders road/roads "
           "square/squares",
           "packs/pack/packed carries/carry/carried books/book/booked visits/visit/visited "
           "reaches/reach/reached misses/miss/missed",
           "suitcase/suitcases ticket/tickets map/maps passport/passports bag/bags postcard/postcards "
           "guidebook/guidebooks",
           "heavy cheap expensive old new small",
           "late early crowded full tired slow foreign",
           "hotel,trip,flight,journey,tour,museum"),
    _topic("music", "musician singer drummer pianist violinist",
           "singer/singers drummer/drummers choir/choirs band/bands orchestra/orchestras "
           "guitarist/guitarists pianist/pianists",
           "sings/sing/sang plays/play/played practises/practise/practised performs/perform/performed "
           "rehearses/rehearse/rehearsed waits/wait/waited",
           "stage/stages hall/halls studio/studios theatre/theatres church/churches club/clubs",
           "tunes/tune/tuned writes/write/wrote hums/hum/hummed learns/learn/learned "
           "practises/practise/practised plays/play/played",
           "piano/pianos guitar/guitars violin/violins drum/drums song/songs melody/melodies "
           "trumpet/trumpets instrument/instruments organ/organs",
           "old new loud soft cheap expensive",
           "loud lively quiet famous young talented",
           "concert,album,song,show,performance,opera"),
    _topic("garden", "gardener florist botanist",
           "flower/flowers tree/trees bee/bees bird/birds butterfly/butterflies worm/worms snail/snails "
           "weed/weeds",
           "grows/grow/grew blooms/bloom/bloomed sways/sway/swayed climbs/climb/climbed "
           "spreads/spread/spread wilts/wilt/wilted",
           "wall/walls path/paths greenhouse/greenhouses hedge/hedges lawn/lawns shed/sheds",
           "waters/water/watered plants/plant/planted digs/dig/dug prunes/prune/pruned picks/pick/picked "
           "trims/trim/trimmed",
           "rose/roses tulip/tulips bush/bushes bean/beans seed/seeds herb/herbs pumpkin/pumpkins "
           "orchid/orchids",
           "green yellow purple pale ripe tiny",
           "green tall yellow thick tiny busy",
           "garden,harvest,greenhouse,soil,fruit"),
    _topic("sea", "sailor captain diver fisher",
           "boat/boats ship/ships wave/waves seagull/seagulls whale/whales dolphin/dolphins crab/crabs "
           "yacht/yachts",
           "floats/float/floated sails/sail/sailed drifts/drift/drifted dives/dive/dived "
           "swims/swim/swam splashes/splash/splashed",
           "harbour/harbours pier/piers beach/beaches lighthouse/lighthouses cliff/cliffs dock/docks",
           "ties/tie/tied repairs/repair/repaired steers/steer/steered cleans/clean/cleaned "
           "loads/load/loaded rows/row/rowed",
           "net/nets rope/ropes anchor/anchors oar/oars lobster/lobsters buoy/buoys mast/masts",
           "wet heavy rusty wooden old long",
           "calm rough big blue fast white",
           "cruise,voyage,beach,view,seafood"),
    _topic("school", "teacher student pupil librarian professor",
           "pupil/pupils student/students teacher/teachers child/children class/classes "
           "librarian/librarians",
           "reads/read/read listens/listen/listened studies/study/studied laughs/laugh/laughed "
           "whispers/whisper/whispered sits/sit/sat",
           "classroom/classrooms library/libraries desk/desks blackboard/blackboards "
           "corridor/corridors playground/playgrounds",
           "marks/mark/marked explains/explain/explained copies/copy/copied opens/open/opened "
           "solves/solve/solved grades/grade/graded",
           "book/books lesson/lessons exam/exams essay/essays notebook/notebooks pencil/pencils "
           "problem/problems question/questions poem/poems",
           "difficult easy short long new old",
           "clever curious patient strict careful quiet",
           "lesson,exam,lecture,homework,book,class"),
    _topic("film", "director actor critic editor",
           "actor/actors camera/cameras audience/audiences critic/critics usher/ushers hero/heroes "
           "villain/villains",
           "smiles/smile/smiled cries/cry/cried speaks/speak/spoke enters/enter/entered "
           "waits/wait/waited bows/bow/bowed",
           "screen/screens cinema/cinemas seat/seats poster/posters curtain/curtains balcony/balconies",
           "films/film/filmed edits/edit/edited watches/watch/watched reviews/review/reviewed "
           "directs/direct/directed rewinds/rewind/rewound",
           "scene/scenes script/scripts movie/movies trailer/trailers episode/episodes "
           "character/characters",
           "funny sad dramatic silent romantic strange long",
           "funny sad famous silent strange nervous",
           "film,movie,ending,plot,acting,soundtrack,script"),
    _topic("market", "shopkeeper trader merchant",
           "customer/customers seller/sellers shopper/shoppers buyer/buyers merchant/merchants "
           "trader/traders",
           "bargains/bargain/bargained queues/queue/queued browses/browse/browsed pays/pay/paid "
           "haggles/haggle/haggled waits/wait/waited",
           "stall/stalls shop/shops counter/counters market/markets street/streets corner/corners",
           "sells/sell/sold buys/buy/bought weighs/weigh/weighed wraps/wrap/wrapped orders/order/ordered "
           "delivers/deliver/delivered",
           "basket/baskets coin/coins cheese/cheeses lemon/lemons orange/oranges scarf/scarves "
           "melon/melons jar/jars",
           "cheap expensive ripe fresh heavy colourful small",
           "busy fair patient polite angry crowded",
           "market,shop,service,price,cheese,bakery"),
    _topic("workshop", "carpenter builder painter plumber engineer",
           "worker/workers builder/builders crane/cranes truck/trucks machine/machines "
           "engineer/engineers robot/robots",
           "lifts/lift/lifted beeps/beep/beeped rattles/rattle/rattled pauses/pause/paused "
           "spins/spin/spun works/work/worked",
           "workshop/workshops garage/garages factory/factories yard/yards warehouse/warehouses "
           "site/sites",
           "builds/build/built paints/paint/painted fixes/fix/fixed drills/drill/drilled "
           "polishes/polish/polished glues/glue/glued",
           "chair/chairs door/doors plank/planks nail/nails drawer/drawers cabinet/cabinets "
           "ladder/ladders hammer/hammers",
           "solid rough smooth sharp broken sturdy dusty old",
           "busy noisy strong slow careful tired",
           "repair,furniture,workshop,chair,roof"),
)
"""The 12 topics. A document draws all its content words from one of them."""

TOPIC_NAMES: tuple[str, ...] = tuple(t.name for t in TOPICS)

FEMALE_NAMES = tuple(
    "Anna Maria Emma Lucy Sara Julia Clara Nina Rosa Alice Helen Laura Grace Ruth Mary Kate Olivia Sophie "
    "Ella Mia Lena Irene Eva Jane Amy Lily Zoe Hannah Rachel Diana".split()
)
MALE_NAMES = tuple(
    "Tom Jack Paul Sam Ben Max Leo Peter David John Mark Luke Adam Oscar Hugo Felix Victor Oliver Henry "
    "George Daniel Simon Eric Noah Carl Frank Ivan Omar Ravi Kenji".split()
)
TOWNS = tuple(
    "Ashford Brookside Millbrook Riverton Oakvale Elmwood Fairhaven Greenfield Hillcrest Lakeside Northwood "
    "Stonebridge Westbury Kingsley Redcliff Maplewood Thornbury Eastleigh".split()
)

POSITIVE = ("good", "great", "nice", "lovely", "wonderful", "excellent", "pleasant", "brilliant")
NEGATIVE = ("bad", "terrible", "awful", "poor", "boring", "dull", "horrible", "dreadful")
INTENSIFIERS = ("very", "really", "quite")

_PREPOSITIONS = ("near", "behind", "beside", "by")
_PLACE_ADJECTIVES = ("old", "new", "small", "big", "empty", "quiet", "busy", "little")
_REPORT_PRESENT = (("says", "say"), ("knows", "know"), ("thinks", "think"), ("believes", "believe"))
_ADVERBS = ("every morning", "all day", "at night", "in the evening", "quickly", "slowly", "quietly",
            "every day", "again")
_TIMES = ("In the morning", "Later that day", "After lunch", "That evening", "On Monday", "The next day",
          "At dawn", "Before dinner", "On Sunday", "In the afternoon")
_WHEN = ("last week", "yesterday", "on Monday", "in the morning", "before lunch", "on Friday",
         "last summer", "after school")
_FEELINGS = ("happy", "tired", "worried", "surprised", "glad", "nervous", "pleased", "upset")
_NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve", "fifteen",
            "twenty")
_NEUTRAL_RELATIVES = ("friend", "neighbour", "cousin", "colleague")
_RELATIVES = {"f": ("sister", "daughter", "aunt"), "m": ("brother", "son", "uncle")}
_PRONOUNS = {  # subject, object, possessive, reflexive
    "f": ("she", "her", "her", "herself"),
    "m": ("he", "him", "his", "himself"),
}
_PRONOUN_PROB = 0.25  # a character who may be referred to by a pronoun is, with this probability
_TOWN_PROB = 0.4  # share of the sentences that can end with " in <town>" that do
_SEE = ("saw", "found", "noticed", "wanted", "bought", "met")  # last one only for people

# Word -> grammatical number, for the agreement checks (tests, chapter): subjects of the agreement sentences
# (agents) and their verbs.
NOUN_NUMBER: dict[str, str] = {}
VERB_NUMBER: dict[str, str] = {"was": "sg", "were": "pl", "is": "sg", "are": "pl"}
for _t in TOPICS:
    for _sg, _pl in _t.agents + _t.objects:
        NOUN_NUMBER[_sg], NOUN_NUMBER[_pl] = "sg", "pl"
    for _s3, _base, _past in _t.verbs:
        VERB_NUMBER[_s3], VERB_NUMBER[_base] = "sg", "pl"
del _t, _sg, _pl, _s3, _base, _past

_GENDER = {**dict.fromkeys(FEMALE_NAMES, "f"), **dict.fromkeys(MALE_NAMES, "m")}
_WORD = re.compile(r"[a-z]+")


def name_gender(name: str) -> str:
    """``"f"`` or ``"m"`` for a character name of the corpus (KeyError for any other word)."""
    return _GENDER[name]


def article(word: str) -> str:
    """``"an"`` before a vowel letter, ``"a"`` otherwise (the lexicon has no ``hour`` or ``unicorn``)."""
    return "an" if word[0] in "aeiou" else "a"


# --------------------------------------------------------------------------------------------------
# Sentiment grammar (shared by the corpus's review sentences and by generate_sentiment)
# --------------------------------------------------------------------------------------------------


def _clause(rng: random.Random, item: str, positive: bool, negate: bool) -> str:
    """``the <item> was [not] <adjective>``, whose meaning is ``positive``."""
    adjective = rng.choice(POSITIVE if positive != negate else NEGATIVE)
    verb = "was" if rng.random() < 0.75 else "is"
    if negate:
        return f"the {item} {verb} not {adjective}"
    if rng.random() < 0.3:  # intensifiers only without negation: "not very bad" would be ambiguous
        return f"the {item} {verb} {rng.choice(INTENSIFIERS)} {adjective}"
    return f"the {item} {verb} {adjective}"


# Shares of the review forms (see generate_sentiment); tuned so that a bag of words is clearly fooled.
_FORMS = (("plain", 0.5), ("negated", 0.2), ("but", 0.15), ("although", 0.15))


def _review(rng: random.Random, items: Sequence[str], positive: bool) -> str:
    """A review whose overall meaning is ``positive``; lower case, no final full stop."""
    u, form = rng.random(), _FORMS[-1][0]
    for name, share in _FORMS:
        if u < share:
            form = name
            break
        u -= share
    if form in ("plain", "negated"):
        return _clause(rng, rng.choice(items), positive, form == "negated")
    first, second = rng.sample(items, 2) if len(items) > 1 else (items[0], items[0])
    a = _clause(rng, first, not positive, rng.random() < 0.5)
    b = _clause(rng, second, positive, rng.random() < 0.5)
    return f"{a} but {b}" if form == "but" else f"although {a}, {b}"


def _capitalise(s: str) -> str:
    return s[0].upper() + s[1:]


# --------------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------------


def _cast(rng: random.Random, topic: Topic) -> Topic:
    """The part of a topic's vocabulary that one document uses: a few agents, places, objects, verbs..."""

    def some(xs: tuple, k: int) -> tuple:
        return tuple(rng.sample(xs, min(k, len(xs))))

    return Topic(topic.name, some(topic.roles, 1), some(topic.agents, 2), some(topic.verbs, 2),
                 some(topic.places, 2), some(topic.actions, 2), some(topic.objects, 2), some(topic.qualities, 2),
                 some(topic.adjectives, 2), some(topic.items, 3))


class _Writer:
    """Writes one document: a topic, one or two characters, and sentences that keep talking about them.

    A document does not draw from its topic's whole vocabulary but from a small *cast* of it (two kinds of
    agents, two places, two kinds of objects...), so that its sentences keep mentioning the same things, as real
    documents do: consecutive segments share words, a random segment from elsewhere rarely does.
    """

    def __init__(self, rng: random.Random, topic: Topic) -> None:
        self.rng = rng
        self.t = _cast(rng, topic)
        female = rng.random() < 0.5
        self.names = [rng.choice(FEMALE_NAMES if female else MALE_NAMES)]
        self.town = rng.choice(TOWNS)
        self.mentioned: list[str] = []  # characters the previous sentence mentioned
        self.has_friend_at = rng.randint(1, 3) if rng.random() < 0.6 else -1

    # --- referring to characters ---------------------------------------------------------------
    def _pronoun_ok(self, name: str) -> bool:
        g = _GENDER[name]
        return name in self.mentioned and sum(_GENDER[n] == g for n in self.mentioned) == 1

    def subject(self) -> tuple[str, str, bool]:
        """(text, the character or "both", plural?) for the subject of the next sentence."""
        rng = self.rng
        if len(self.mentioned) == 2 and rng.random() < 0.25:
            a, b = self.mentioned
            return ("they" if rng.random() < 0.5 else f"{a} and {b}"), "both", True
        name = rng.choice(self.mentioned)
        if self._pronoun_ok(name) and rng.random() < _PRONOUN_PROB:
            return _PRONOUNS[_GENDER[name]][0], name, False
        return name, name, False

    def _refs(self, who: str) -> list[str]:
        return list(self.names) if who == "both" else [who]

    def poss(self, who: str) -> str:
        return "their" if who == "both" else _PRONOUNS[_GENDER[who]][2]

    def where(self) -> str:
        """Sometimes " in <town>": the document's town recurs, one more thread between its sentences."""
        return f" in {self.town}" if self.rng.random() < _TOWN_PROB else ""

    # --- sentences ------------------------------------------------------------------------------
    def intro(self) -> str:
        rng, name, role = self.rng, self.names[0], self.rng.choice(self.t.roles)
        k = rng.random()
        if k < 0.4:
            s = f"{name} is {article(role)} {role} who lives in {self.town}."
        elif k < 0.7:
            s = f"{name} works as {article(role)} {role} in {self.town}."
        else:
            s = f"{name} has been {article(role)} {role} in {self.town} for {rng.choice(_NUMBERS)} years."
        self.mentioned = [name]
        return s

    def friend(self) -> str:
        rng = self.rng
        subj, who, plural = self.subject()
        if plural:  # introduce the friend through the main character
            subj, who = self.names[0], self.names[0]
        female = rng.random() < 0.5
        pool = [n for n in (FEMALE_NAMES if female else MALE_NAMES) if n != self.names[0]]
        friend = rng.choice(pool)
        self.names.append(friend)
        g = _GENDER[friend]
        relative = rng.choice(_RELATIVES[g]) if rng.random() < 0.5 else rng.choice(_NEUTRAL_RELATIVES)
        if rng.random() < 0.6:
            s = f"{_capitalise(subj)} has {article(relative)} {relative} called {friend}."
        else:
            place = rng.choice(self.t.places)[0]
            s = f"{_capitalise(subj)} met {self.poss(who)} {relative} {friend} near the {place}."
        self.mentioned = [who, friend]
        return s

    def agreement(self) -> str:
        """The X(s) near the Y(s) verb(s): number agreement across an attractor of the other number."""
        rng, t = self.rng, self.t
        n = rng.random() < 0.5  # plural subject?
        m = (not n) if rng.random() < 0.7 else n  # the attractor usually has the other number
        agent = rng.choice(t.agents)[n]
        place = rng.choice(t.places)[m]
        adj = f"{rng.choice(_PLACE_ADJECTIVES)} " if rng.random() < 0.4 else ""
        prep = rng.choice(_PREPOSITIONS)
        subj, who, plural = self.subject()
        k = rng.random()
        if k < 0.45:
            verb = rng.choice(t.verbs)[n]
            report = rng.choice(_REPORT_PRESENT)[plural]
            s = f"{subj} {report} that the {agent} {prep} the {adj}{place} {verb} {rng.choice(_ADVERBS)}."
        elif k < 0.75:
            be = "were" if n else "was"
            s = f"{subj} noticed that the {agent} {prep} the {adj}{place} {be} {rng.choice(t.adjectives)}."
        else:
            verb = rng.choice(t.verbs)[n]
            s = f"the {agent} {prep} {self.poss(who)} {adj}{place} {verb} {rng.choice(_ADVERBS)}."
        self.mentioned = self._refs(who)
        return _capitalise(s)

    def determiner(self) -> str:
        """a/an and this/these: predictable only from the next word."""
        rng, t = self.rng, self.t
        subj, who, plural = self.subject()
        if rng.random() < 0.6:
            noun = rng.choice(t.objects)[0]
            if rng.random() < 0.5:
                adj = rng.choice(t.qualities)
                phrase = f"{article(adj)} {adj} {noun}"
            else:
                phrase = f"{article(noun)} {noun}"
            see = rng.choice(_SEE[:-1])
            s = f"{subj} {see} {phrase} near the {rng.choice(t.places)[0]}{self.where()}."
        else:
            n = rng.random() < 0.5
            noun = rng.choice(t.objects)[n]
            det, be = ("these", "are") if n else ("this", "is")
            report = rng.choice(_REPORT_PRESENT)[plural]
            s = f"{subj} {report} that {det} {noun} {be} {rng.choice(t.qualities)}."
        self.mentioned = self._refs(who)
        return _capitalise(s)

    def possessive(self) -> str:
        """his/her/himself/herself agree with a name earlier in the sentence or in the previous one."""
        rng, t = self.rng, self.t
        subj, who, plural = self.subject()
        action = rng.choice(t.actions)[2]
        n = rng.random() < 0.5
        obj = rng.choice(t.objects)[n]
        k = rng.random()
        if k < 0.45 and not plural:
            pron = _PRONOUNS[_GENDER[who]][0]
            s = f"{subj} {action} {self.poss(who)} {obj} before {pron} went to the {rng.choice(t.places)[0]}."
        elif k < 0.7 and not plural:
            refl = _PRONOUNS[_GENDER[who]][3]
            s = f"{subj} told {refl} that the {obj} {'were' if n else 'was'} {rng.choice(t.qualities)}."
        else:
            s = f"{subj} {action} the {obj} for {self.poss(who)} {rng.choice(_NEUTRAL_RELATIVES)}."
        self.mentioned = self._refs(who)
        return _capitalise(s)

    def relative_clause(self) -> str:
        """The N(s) that <subject> <verb> <when> was/were ADJ: agreement across a relative clause."""
        rng, t = self.rng, self.t
        subj, who, _ = self.subject()
        n = rng.random() < 0.5
        obj = rng.choice(t.objects)[n]
        action = rng.choice(t.actions)[2]
        be = "were" if n else "was"
        s = f"the {obj} that {subj} {action} {rng.choice(_WHEN)} {be} {rng.choice(t.qualities)}."
        self.mentioned = self._refs(who)
        return _capitalise(s)

    def action(self) -> str:
        rng, t = self.rng, self.t
        subj, who, _ = self.subject()
        obj = rng.choice(t.objects)[rng.random() < 0.5]
        action = rng.choice(t.actions)[2]
        s = f"{rng.choice(_TIMES)}, {subj} {action} the {obj} {rng.choice(_PREPOSITIONS)} the " \
            f"{rng.choice(t.places)[0]}{self.where()}."
        self.mentioned = self._refs(who)
        return s

    def feeling(self) -> str:
        rng, t = self.rng, self.t
        subj, who, plural = self.subject()
        n = rng.random() < 0.5
        agent = rng.choice(t.agents)[n]
        s = f"{subj} {'were' if plural else 'was'} {rng.choice(_FEELINGS)} because the {agent} " \
            f"{'were' if n else 'was'} {rng.choice(t.adjectives)}."
        self.mentioned = self._refs(who)
        return _capitalise(s)

    def review(self) -> str:
        rng = self.rng
        subj, who, plural = self.subject()
        body = _review(rng, self.t.items, rng.random() < 0.5)
        if rng.random() < 0.2 and who != "both":
            s = f"According to {who}, {body}."
        else:
            verb = rng.choice(("said", "thought", "felt"))
            s = _capitalise(f"{subj} {verb} that {body}.")
        self.mentioned = self._refs(who)
        return s

    def together(self) -> str:
        rng, t = self.rng, self.t
        a, b = self.names
        obj = rng.choice(t.objects)[1]
        s = f"{a} and {b} {rng.choice(t.actions)[2]} the {obj} together near the {rng.choice(t.places)[0]}" \
            f"{self.where()}."
        self.mentioned = [a, b]
        return s

    def write(self, num_sentences: int) -> list[str]:
        rng = self.rng
        sentences = [self.intro()]
        kinds = (self.agreement, self.determiner, self.possessive, self.relative_clause, self.action,
                 self.feeling, self.review)
        weights = (0.22, 0.16, 0.16, 0.13, 0.11, 0.08, 0.14)
        for i in range(1, num_sentences):
            if i == self.has_friend_at:
                sentences.append(self.friend())
            elif len(self.names) == 2 and rng.random() < 0.07:
                sentences.append(self.together())
            else:
                sentences.append(rng.choices(kinds, weights)[0]())
        return sentences


def generate_corpus_with_topics(
    num_documents: int, seed: int = 0, min_sentences: int = 4, max_sentences: int = 12,
    topics: Sequence[str] | None = None,
) -> tuple[list[list[str]], list[str]]:
    """Like :func:`generate_corpus`, and also return each document's topic name."""
    if not isinstance(num_documents, int) or num_documents < 0:
        raise ValueError(f"num_documents must be a non-negative integer, got {num_documents!r}.")
    if not 1 <= min_sentences <= max_sentences:
        raise ValueError(
            f"Need 1 <= min_sentences <= max_sentences, got min_sentences={min_sentences}, "
            f"max_sentences={max_sentences}."
        )
    pool = TOPICS
    if topics is not None:
        unknown = sorted(set(topics) - set(TOPIC_NAMES))
        if unknown or not topics:
            raise ValueError(f"Unknown topics {unknown}; choose a non-empty subset of {list(TOPIC_NAMES)}.")
        pool = tuple(t for t in TOPICS if t.name in set(topics))
    rng = random.Random(seed)
    documents, names = [], []
    for _ in range(num_documents):
        topic = rng.choice(pool)
        documents.append(_Writer(rng, topic).write(rng.randint(min_sentences, max_sentences)))
        names.append(topic.name)
    return documents, names


def generate_corpus(
    num_documents: int, seed: int = 0, min_sentences: int = 4, max_sentences: int = 12,
    topics: Sequence[str] | None = None,
) -> list[list[str]]:
    """Generate ``num_documents`` documents, each a list of ``min_sentences``-``max_sentences`` sentences.

    Deterministic: the same arguments always give the same corpus. See the module docstring for what the
    sentences contain and why. About 8 sentences and 70 words per document.

    Args:
        num_documents: how many documents.
        seed: seed of the generator.
        min_sentences, max_sentences: range of the number of sentences per document (uniform).
        topics: restrict the documents to these topic names (default: all of :data:`TOPIC_NAMES`).

    Returns:
        The documents: ``documents[d][s]`` is sentence ``s`` of document ``d``, a string.
    """
    return generate_corpus_with_topics(num_documents, seed, min_sentences, max_sentences, topics)[0]


def _topic_words() -> dict[str, str]:
    owner: dict[str, set[str]] = {}
    for t in TOPICS:
        words = set(t.roles) | set(t.qualities) | set(t.adjectives)
        words |= {w for group in (t.agents, t.verbs, t.places, t.actions, t.objects) for entry in group for w in entry}
        words |= {w for item in t.items for w in item.split()}
        for w in words:
            owner.setdefault(w, set()).add(t.name)
    return {w: next(iter(names)) for w, names in owner.items() if len(names) == 1}


TOPIC_WORDS: dict[str, str] = _topic_words()
"""Word -> topic, for the words that belong to exactly one topic."""


def guess_topic(text: str) -> str | None:
    """The topic whose own words (:data:`TOPIC_WORDS`) occur most often in ``text``; None if none occurs.

    A bag-of-words guess: on this corpus it is nearly always right for a few sentences, which is why
    next-sentence prediction here is mostly topic detection (as it largely is on real text).
    """
    counts: dict[str, int] = {}
    for w in _WORD.findall(text.lower()):
        topic = TOPIC_WORDS.get(w)
        if topic is not None:
            counts[topic] = counts.get(topic, 0) + 1
    return max(counts, key=lambda t: (counts[t], t)) if counts else None


# --------------------------------------------------------------------------------------------------
# The labelled sentence task
# --------------------------------------------------------------------------------------------------

_REVIEW_ITEMS: tuple[str, ...] = tuple(dict.fromkeys(i for t in TOPICS for i in t.items))


def generate_sentiment(num_examples: int, seed: int = 0) -> list[tuple[str, int]]:
    """Labelled reviews: ``(sentence, label)`` with label 1 = positive, 0 = negative; exactly balanced.

    A review is one of four forms (shares 50/20/15/15%), optionally introduced by ``<Name> said that`` or
    ``According to <Name>,``:

    * plain: ``the soup was very good`` (the adjective's polarity),
    * negated: ``the soup was not bad`` (the opposite of the adjective's polarity),
    * contrast: ``the film was good but the ending was not great`` and
      ``although the film was good, the ending was terrible``: the clause after *but* / the main clause
      decides, and the two clauses always disagree.

    Every example is fully determined by its text (:func:`sentiment_rule` gets 100%), but each word
    (including *not*) appears about equally often in positive and negative examples, so a bag-of-words
    classifier can only use the plain reviews (:func:`bag_of_words_baseline`).
    """
    if not isinstance(num_examples, int) or num_examples < 0:
        raise ValueError(f"num_examples must be a non-negative integer, got {num_examples!r}.")
    rng = random.Random(f"sentiment-{seed}")
    labels = [i % 2 for i in range(num_examples)]
    rng.shuffle(labels)
    examples = []
    for label in labels:
        body = _review(rng, _REVIEW_ITEMS, bool(label))
        k = rng.random()
        name = rng.choice(FEMALE_NAMES + MALE_NAMES)
        if k < 0.3:
            text = f"{body}."
        elif k < 0.85:
            text = f"{name} {rng.choice(('said', 'thought', 'felt'))} that {body}."
        else:
            text = f"According to {name}, {body}."
        examples.append((_capitalise(text), label))
    return examples


def sentiment_dataset(num_examples: int, seed: int = 0):
    """:func:`generate_sentiment` as a ``datasets.Dataset`` with columns ``text`` and ``label``."""
    import datasets

    examples = generate_sentiment(num_examples, seed)
    return datasets.Dataset.from_dict({"text": [t for t, _ in examples], "label": [y for _, y in examples]})


_POLARITY = {**dict.fromkeys(POSITIVE, 1), **dict.fromkeys(NEGATIVE, 0)}


def sentiment_rule(text: str) -> int:
    """The label of a review of :func:`generate_sentiment`, computed by the rule that defines it.

    Take the deciding clause (after *but*; after the comma that ends an *although* clause; otherwise the only
    clause), find its adjective, and flip its polarity if the clause contains *not*.
    """
    s = text.lower().rstrip(".")
    if " but " in s:
        s = s.split(" but ", 1)[1]
    elif "although " in s:
        s = s.split("although ", 1)[1].split(", ", 1)[1]
    words = _WORD.findall(s)
    polarity = [_POLARITY[w] for w in words if w in _POLARITY]
    if len(polarity) != 1:
        raise ValueError(f"Not a review of generate_sentiment: {text!r}.")
    return polarity[0] ^ ("not" in words)


def bag_of_words_baseline(
    train: Sequence[tuple[str, int]], test: Sequence[tuple[str, int]], max_n: int = 1,
    steps: int = 300, weight_decay: float = 1e-4,
) -> float:
    """Test accuracy of a logistic regression on the bag of words (word n-grams up to ``max_n``).

    The features are binary: 1 if an n-gram of the training vocabulary occurs in the sentence. The model is
    fitted by full-batch L-BFGS on the cross-entropy with a small L2 penalty; pure torch, deterministic.

    Args:
        train, test: ``(text, label)`` pairs with labels 0/1.
        max_n: 1 for words only, 2 to add word pairs (which capture "not good" but not "but").
    """
    import torch

    if not train or not test:
        raise ValueError("bag_of_words_baseline needs non-empty train and test sets of (text, label) pairs.")

    def grams(text: str) -> set[str]:
        words = _WORD.findall(text.lower())
        return {" ".join(words[i:i + n]) for n in range(1, max_n + 1) for i in range(len(words) - n + 1)}

    train_grams = [grams(t) for t, _ in train]
    vocab = {g: i for i, g in enumerate(sorted(set().union(*train_grams)))}

    def features(all_grams: list[set[str]]) -> torch.Tensor:
        x = torch.zeros(len(all_grams), len(vocab))
        for r, gs in enumerate(all_grams):
            cols = [vocab[g] for g in gs if g in vocab]
            x[r, cols] = 1.0
        return x

    x_train = features(train_grams)
    y_train = torch.tensor([float(y) for _, y in train])
    x_test = features([grams(t) for t, _ in test])
    y_test = torch.tensor([float(y) for _, y in test])
    w = torch.zeros(len(vocab), requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = x_train @ w + b
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y_train)
        loss = loss + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        predictions = (x_test @ w + b) > 0
    return (predictions.float() == y_test).float().mean().item()
