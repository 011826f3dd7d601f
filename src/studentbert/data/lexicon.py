"""The lexicon of the generated corpus: 12 topics and their words, names, towns, sentiment adjectives.

About 1,100 word types, each listed once: the grammar (:mod:`.corpus`) and the sentiment task
(:mod:`.sentiment`) draw every word from here. :data:`NOUN_NUMBER` and :data:`VERB_NUMBER` give the
grammatical number of the agreement words (for the checks of the tests and chapter 3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


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

PREPOSITIONS = ("near", "behind", "beside", "by")
PLACE_ADJECTIVES = ("old", "new", "small", "big", "empty", "quiet", "busy", "little")
REPORT_PRESENT = (("says", "say"), ("knows", "know"), ("thinks", "think"), ("believes", "believe"))
ADVERBS = ("every morning", "all day", "at night", "in the evening", "quickly", "slowly", "quietly",
            "every day", "again")
TIMES = ("In the morning", "Later that day", "After lunch", "That evening", "On Monday", "The next day",
          "At dawn", "Before dinner", "On Sunday", "In the afternoon")
WHEN = ("last week", "yesterday", "on Monday", "in the morning", "before lunch", "on Friday",
         "last summer", "after school")
FEELINGS = ("happy", "tired", "worried", "surprised", "glad", "nervous", "pleased", "upset")
NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve", "fifteen",
            "twenty")
NEUTRAL_RELATIVES = ("friend", "neighbour", "cousin", "colleague")
RELATIVES = {"f": ("sister", "daughter", "aunt"), "m": ("brother", "son", "uncle")}
PRONOUNS = {  # subject, object, possessive, reflexive
    "f": ("she", "her", "her", "herself"),
    "m": ("he", "him", "his", "himself"),
}
SEE = ("saw", "found", "noticed", "wanted", "bought", "met")  # last one only for people

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

GENDER = {**dict.fromkeys(FEMALE_NAMES, "f"), **dict.fromkeys(MALE_NAMES, "m")}
WORD = re.compile(r"[a-z]+")


def article(word: str) -> str:
    """``"an"`` before a vowel letter, ``"a"`` otherwise (the lexicon has no ``hour`` or ``unicorn``)."""
    return "an" if word[0] in "aeiou" else "a"


def capitalise(s: str) -> str:
    """The sentence with its first letter upper-cased."""
    return s[0].upper() + s[1:]
