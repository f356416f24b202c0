"""Radiologists' words → canonical values: the regular expressions the parser matches.

Every table is a list of ``(pattern, value)`` pairs tried in order; more specific phrasings come
first so that e.g. "inhomogeneous" is never read as "homogeneous". Patterns run on normalised
text (lower case, accents stripped, every dash a "-", whitespace collapsed; see
:func:`normalise`), so they only need ``[- ]?`` for the hyphen-or-space variants.
"""

from __future__ import annotations

import re
import unicodedata

# --- normalisation -----------------------------------------------------------------------

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"), "-")


def normalise(text: str) -> str:
    """Lower-case, strip accents, unify dashes and whitespace (so 'Lésion – 2×3 cm' matches)."""
    text = unicodedata.normalize("NFKD", text.translate(_DASHES))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("\u00d7", " x ")  # the multiplication sign of "2×3 cm"
    return re.sub(r"\s+", " ", text.lower()).strip()


# --- negation and uncertainty -------------------------------------------------------------

#: phrases whose meaning *includes* a negation; matched before negation scopes are computed
NEGATION_TRIGGERS = (
    r"\bno evidence of\b|\bnegative for\b|\bfree of\b|\babsence of\b|\babsent\b|\bwithout\b"
    r"|\bno\b|\bnot\b|\bnor\b|\bneither\b|\brather than\b|\bruled out\b|\bexcluded\b"
)
#: negations that follow what they negate ("calcification is not seen"); scope runs back to the clause start
POST_NEGATION = (
    r"\b(?:is|are|was|were|has been|have been) (?:not (?:seen|identified|present|visuali[sz]ed|demonstrated|evident"
    r"|noted|observed|detected|appreciated)|absent|excluded|ruled out)\b"
)
#: words that end a negation's scope (besides , . ; : and the end of text)
NEGATION_STOP = r"\b(?:but|however|although|though|while|whereas|which|except|and (?:an?|the)|with)\b"

UNCERTAINTY = (
    r"\bpossibl[ey]\b|\bprobabl[ey]\b|\blikely\b|\bsuspicious (?:for|of)\b|\bsuspect(?:ed)?\b"
    r"|\bcannot be (?:excluded|ruled out)\b|\bcan ?not (?:exclude|rule out)\b|\bquestionable\b"
    r"|\bequivocal\b|\bmay represent\b|\bcould represent\b|\bsuggestive of\b|\bconcerning for\b"
    r"|\bindeterminate\b|\bdifferential\b|\bpresumed\b|\bpresumably\b|\bquery\b|\?"
)

# --- Malenia's attributes -----------------------------------------------------------------

_OBJECT = r"(?: (?:of |into |with |to )?(?:the )?[^.;,]{1,40}?(?=[.;,]|$| with\b| and\b| but\b))?"

#: relation; negated phrasings are listed as *positive* patterns for "not closely related"
RELATION_NOT = [
    r"\bno (?:obvious |definite |clear |close )?(?:relation(?:ship)?|contact|invasion|infiltration)"
    r"(?: (?:with|to|of|into) (?:the )?(?:adjacent|surrounding|neighbou?ring|nearby)? ?(?:organs?|structures?))?",
    r"\bnot (?:closely )?(?:related|attached|adherent|invading)\b(?: (?:to|with) [a-z ]{0,40}?(?=[,.;]|$))?",
    r"\b(?:preserved|intact|clear) fat planes?\b|\bfat planes? (?:is |are )?(?:preserved|intact|clear)\b",
    # the neighbour named after these is masked too, so it is never taken for the lesion's organ
    r"\b(?:well |clearly )?separated? from" + _OBJECT,
    r"\bwithout (?:evidence of |signs? of )?(?:local )?(?:invasion|infiltration|extension)" + _OBJECT,
    r"\bclear fat planes? (?:with|to)" + _OBJECT,
    r"\bconfined to the\b|\bnot closely related\b",
]
#: "closely related to X (with indistinct borders)": the whole span is relation, never surface
RELATION_CLOSE = [
    r"\b(?:is |are )?(?:closely |intimately )(?:related|associated|attached|adherent|abutting|applied)"
    r" (?:to|with) (?P<organ>[^.;,]{1,60}?)(?=,? with\b|[.;,]|$)(?:,? with (?:an? )?[a-z -]{0,30}?"
    r"(?:borders?|demarcation|boundar(?:y|ies)|interfaces?|margins?|fat planes?|edges?))?",
    r"\b(?:invad(?:es|ing)|invasion of|infiltrat(?:es|ing)|encas(?:es|ing|ement of)|abut(?:s|ting)"
    r"|involv(?:es|ing)|inseparable from|adherent to|extends? into|extending into|protrud(?:es|ing) into)"
    r" (?:the )?(?P<organ>[^.;,]{1,40}?)(?=,| with\b|[.;]|$)",
    r"\b(?:loss of|obliterat(?:ed|ion of)|indistinct|unclear|blurred) (?:the )?fat planes?"
    r"(?: (?:with|to) (?:the )?(?P<organ>[^.;,]{1,40}?)(?=[.;,]|$))?",
]

SHAPE = [
    (r"\bround[- ]?like\b|\b(?:roughly |nearly |approximately )?round(?:ed|ish)?\b|\boval\b|\bovoid\b"
     r"|\bspherical\b|\bcircular\b|\belliptical\b", "round-like"),
    (r"\birregular(?:ly shaped|ly)?\b|\blobulated\b|\blobular\b|\bpatchy\b|\bwedge[- ]?shaped\b"
     r"|\bamorphous\b|\bbizarre\b|\bmultilobulated\b|\bbranching\b", "irregular"),
]

#: density: which value, and which phrasings name the lesion's *main* density
DENSITY = [
    # "mixed hyperdense" = mainly hyperdense with other components (the code book's reading),
    # so a bare "mixed" is only "mixed" when no density word follows it
    (r"\bmixed (?:density|attenuation)\b|\bof mixed (?:density|attenuation)\b|\bpart[- ]?solid\b"
     r"|\bpartly solid\b|\bpartially solid\b|\bsubsolid\b|\bsemi[- ]?solid\b"
     r"|\bground[- ]?glass and (?:solid|soft[- ]tissue)\b|\bmixed\b(?! ?(?:hyper|hypo|iso|high|low))",
     "mixed"),
    (r"\bhyper[- ]?(?:dense|density|attenuating|attenuation|enhancing|enhancement|vascular)\b"
     r"|\bhigh(?:er)?[- ](?:attenuation|density)\b|\bincreased (?:attenuation|density)\b"
     r"|\bslightly (?:higher|increased|high)\b|\bhigher (?:attenuation|density) than\b"
     r"|\bbright(?:er)?\b|\bavidly enhancing\b|\barterial(?:ly)? (?:phase )?(?:hyper)?enhanc\w*"
     r"|\bsclerotic\b|\bblastic\b|\bcalcified (?:lesion|nodule|mass)\b", "hyperdense"),
    (r"\biso[- ]?(?:dense|density|attenuating|attenuation|enhancing)\b"
     r"|\bsimilar (?:attenuation|density) (?:to|as)\b|\b(?:attenuation|density) similar to\b"
     r"|\bsame (?:attenuation|density) as\b|\bequal (?:attenuation|density)\b"
     r"|\bsoft[- ]tissue (?:density|attenuation|mass|nodule|lesion)\b", "isodense"),
    (r"\bhypo[- ]?(?:dense|density|attenuating|attenuation|enhancing|enhancement|vascular)\b"
     r"|\blow(?:er)?[- ](?:attenuation|density)\b|\b(?:decreased|reduced) (?:attenuation|density)\b"
     r"|\bslightly (?:lower|decreased|low)\b|\blower (?:attenuation|density) than\b"
     r"|\bground[- ]?glass\b|\bggo\b|\b(?:fluid|water)[- ](?:density|attenuation)\b|\bcystic\b"
     r"|\bfat(?:ty)?[- ](?:density|attenuation)\b|\bdark(?:er)?\b|\blytic\b|\bosteolytic\b", "hypodense"),
]
#: a density word in these contexts describes a component, not the lesion's main density
DENSITY_COMPONENT_BEFORE = (
    r"(?:\bareas? of|\bfoc(?:i|us) of|\bregions? of|\bspots? of|\bcomponents? of|\bportions? of"
    r"|\binternal|\bwithin|\bcontain(?:s|ing)?|\brim of)(?:\s+[a-z-]+){0,2}\s*$"
)
DENSITY_COMPONENT_AFTER = (
    r"^\s*(?:[a-z-]+\s+){0,1}(?:areas?|foc(?:i|us)|components?|portions?|regions?|spots?|rims?|septa"
    r"|structures?|walls?|within|inside|contents?|material|calcifications?)\b"
)
#: an indefinite "a (patchy) area of low attenuation" is the lesion itself, not a component
DENSITY_SELF_AREA = r"\ban? (?:[a-z-]+ ){0,2}(?:areas?|regions?|focus) of\s*$"
#: … and so is "a large hypodense area" (indefinite article, singular area after the word)
DENSITY_SELF_BEFORE = r"(?:^|\ban?|\bone|\bthere is|\bshows?|:)(?: [a-z-]+){0,3} ?$"
DENSITY_SELF_AFTER = r"^ (?:area|region|focus|zone)\b"

DENSITY_VARIATION = [
    (r"\b(?:in|non[- ]?|un)homogeneous(?:ly)?\b|\bheterogene(?:ous|ity|ously)\b|\buneven(?:ly)?\b"
     r"|\bmottled\b|\bnot homogeneous\b|\bvariegated\b", "heterogeneous"),
    (r"\bhomogene(?:ous|ity|ously)\b|\buniform(?:ly)?\b|\beven(?:ly)? (?:density|attenuation|enhancement)\b",
     "homogeneous"),
]

SURFACE = [
    (r"\bnot (?:well|clearly|sharply)[- ]?(?:defined|circumscribed|demarcated|marginated)\b"
     r"|\bill[- ]?(?:defined|circumscribed|demarcated|marginated)\b"
     r"|\bpoorly[- ]?(?:defined|circumscribed|demarcated|marginated|delineated)\b"
     r"|\bindistinct(?:ly)?\b|\bunclear (?:margins?|borders?|boundar(?:y|ies)|edges?)\b"
     r"|\b(?:margins?|borders?|boundar(?:y|ies)|edges?) (?:is |are |were |was )?(?:unclear|indistinct|blurred"
     r"|ill[- ]defined|poorly defined|irregular|fuzzy|obscured?)\b|\bblurr?(?:ed|y)\b|\bfuzzy\b"
     r"|\binfiltrat(?:ive|ing)\b|\bspiculat(?:ed|ions?)\b|\bspiculae?\b|\bspiky\b"
     r"|\birregular (?:margins?|borders?|edges?|outlines?)\b|\bvague\b|\bobscured? margins?\b",
     "ill-defined"),
    (r"\bwell[- ]?(?:defined|circumscribed|demarcated|marginated|delineated|encapsulated)\b"
     r"|\b(?:sharply|clearly) (?:defined|demarcated|marginated|delineated|circumscribed)\b"
     r"|\bcircumscribed\b|\b(?:sharp|clear|smooth|distinct|crisp) (?:margins?|borders?|boundar(?:y|ies)"
     r"|edges?|outlines?|contours?)\b|\b(?:margins?|borders?|boundar(?:y|ies)|edges?) (?:is |are |were |was )?"
     r"(?:clear|sharp|smooth|well[- ]defined|distinct)\b|\bencapsulated\b|\bsmooth(?:ly)? marginated\b",
     "well-defined"),
]

ENHANCEMENT = [
    (r"\bnon[- ]?(?:contrast|enhanced|enhancement)(?:[- ]enhanced)? (?:ct|scan|images?|study|phase)\b"
     r"|\bunenhanced\b|\bnon[- ]?contrast\b|\bplain (?:ct|scan|phase)\b|\bnon[- ]?enhanced ct\b"
     r"|\bwithout (?:iv |intravenous )?contrast\b|\bnect\b|\bncct\b|\bpre[- ]?contrast\b", "non-contrast"),
    (r"\bcontrast[- ]?enhanced\b|\bpost[- ]?contrast\b|\bwith (?:iv |intravenous )?contrast\b|\bcect\b"
     r"|\b(?:late )?arterial phase\b|\bportal[- ]?venous\b|\bvenous phase\b|\bdelayed phase\b"
     r"|\bnephrographic\b|\bcorticomedullary\b|\b(?:hyper|hypo|iso)[- ]?enhanc\w*|\benhanc(?:es|ing|ement)\b"
     r"|\bwash[- ]?out\b", "contrast-enhanced"),
]

#: specific features (Malenia's eighth attribute); each canonical name with its phrasings
SPECIFIC_FEATURES = [
    (r"\b(?:(?:main |common )?(?:pancreatic|bile|biliary|hepatic|main|common bile|upstream|intrahepatic)"
     r" ducts?(?: is| are| was)? (?:\w+ )?(?:dilated|dilatation|dilation|distended|enlarged|obstructed)\b)"
     r"|\bdilat(?:ed|ation of|ion of)(?: the)? (?:\w+ ){0,2}ducts?\b|\bduct(?:al)? dilat(?:ation|ion)\b"
     r"|\bductal dilatation\b|\bdouble[- ]duct\b|\bbiliary dilatation\b|\bupstream duct dilated\b",
     "duct dilatation"),
    (r"\bcalcif\w*|\bcalcific\b", "calcification"),
    (r"\bnecro(?:sis|tic)\b", "necrosis"),
    (r"\bcavit(?:y|ies|ation|ary)\b", "cavitation"),
    (r"\bspiculat(?:ed|ions?)\b|\bspicules?\b|\bspiculae\b|\bcorona radiata\b", "spiculation"),
    (r"\b(?:vessel|vascular) convergence\b|\bconverging vessels\b", "vessel convergence"),
    (r"\bpleural (?:traction|retraction|indentation|tag|tail)\b", "pleural traction"),
    (r"\b(?:macroscopic|intralesional|internal|gross|intratumou?ral) fat\b|\bfat(?:ty)?(?:[- ]containing|[- ](?:density"
     r"|attenuation|components?))\b|\bcontain(?:s|ing)? fat\b|\bfatty (?:lesion|component|tissue)\b", "fat"),
    (r"\bh(?:a)?emorrha\w*|\bbleed(?:ing)?\b", "hemorrhage"),
    (r"\bsept(?:a|ations?|ated)\b", "septation"),
    (r"\bwall thicken\w*|\bthickened wall\b|\bthickening of the \w+ wall\b", "wall thickening"),
    (r"\bair bronchograms?\b", "air bronchogram"),
    (r"\b(?:arterial )?wash[- ]?out\b", "washout"),
    (r"\b(?:enhancing )?(?:pseudo)?capsule\b", "capsule"),
    (r"\batroph(?:y|ic)\b", "atrophy"),
    (r"\b(?:tumou?r |portal vein |venous )thromb\w*|\bvascular invasion\b", "vascular invasion"),
]

# --- organs and where in them ---------------------------------------------------------------

ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "iva": 4, "ivb": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8}
ROMAN_OUT = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII"}

#: sub-locations that also name their organ; (pattern, organ, sub_location or None, side or None)
SUB_LOCATIONS = [
    (r"\b(?:liver |hepatic |couinaud )?segments? (?P<seg>viii|vii|vi|iva|ivb|iv|v|iii|ii|i|[1-8][ab]?)\b"
     r"(?! ?(?:cm|mm))(?:(?: ?[,/-] ?| and | or | to )(?:viii|vii|vi|iva|ivb|iv|v|iii|ii|i|[1-8])\b(?! ?(?:cm|mm)))*",
     "liver", "segment", None),
    (r"\bs(?P<seg>[1-8])\b", "liver", "segment", None),
    (r"\bcaudate lobe\b", "liver", "caudate lobe", None),
    (r"\b(?P<side>right|left) (?:hepatic|liver) lobe\b|\b(?P<side2>right|left) lobe of (?:the )?liver\b",
     "liver", "lobe", None),
    (r"\b(?:hepatic|liver) (?P<side>right|left) lobe\b", "liver", "lobe", None),
    (r"\b(?P<pole>upper|lower) pole\b|\b(?P<mid>interpolar|mid[- ]?pole)\b", "kidney", "pole", None),
    (r"\b(?P<side>right|left) (?P<lobe>upper|middle|lower) (?:lung )?lobe\b"
     r"|\b(?P<lobe2>upper|middle|lower) lobe of (?:the )?(?P<side2>right|left) lung\b", "lung", "lung lobe", None),
    (r"\b(?P<abbr>rul|rml|rll|lul|lll)\b", "lung", "lung lobe", None),
    (r"\blingula(?:r)?\b", "lung", "left upper lobe", "left"),
    # a bare "right lobe" (no upper/middle/lower) is a liver lobe; checked after the lung lobes
    (r"\b(?P<side>right|left) lobe\b(?! of (?:the )?(?:thyroid|prostate|lung))", "liver", "lobe", None),
    (r"\b(?:pancreatic )?uncinate(?: process)?\b", "pancreas", "uncinate process", None),
    (r"\b(?:pancreatic|pancreas) (?P<part>head|neck|body|tail)\b|\b(?P<part2>head|neck|body|tail)"
     r" (?:of|region of) (?:the )?pancrea(?:s|tic)\b", "pancreas", "pancreas part", None),
    (r"\b(?:c(?:a|ae)?ecum|c(?:a|ae)?ecal)\b", "colon", "cecum", None),
    (r"\bascending colon\b", "colon", "ascending colon", None),
    (r"\bhepatic flexure\b", "colon", "hepatic flexure", None),
    (r"\btransverse colon\b", "colon", "transverse colon", None),
    (r"\bsplenic flexure\b", "colon", "splenic flexure", None),
    (r"\bdescending colon\b", "colon", "descending colon", None),
    (r"\brecto[- ]?sigmoid\b", "colon", "rectosigmoid", None),
    (r"\bsigmoid(?: colon)?\b", "colon", "sigmoid colon", None),
    (r"\brect(?:um|al)\b", "colon", "rectum", None),
]

#: organs; (pattern, canonical organ)
ORGANS = [
    (r"\bgall[- ]?bladder\b|\bcholecyst\w*", "gallbladder"),
    (r"\bsupra[- ]?renal\b|\badrenals?\b", "adrenal"),
    (r"\blymph[- ]?nodes?\b|\blymphadenopathy\b|\bnodal\b|\b(?:hilar|mediastinal|para[- ]?aortic|retroperitoneal"
     r"|mesenteric|axillary|cervical|inguinal|iliac|portocaval|peripancreatic) (?:lymph )?nodes?\b", "lymph node"),
    (r"\bliver\b|\bhepatic\b|\bhepato\w*", "liver"),
    (r"\bkidneys?\b|\brenal\b|\bnephr\w*", "kidney"),
    (r"\bpancrea(?:s|tic)\b", "pancreas"),
    (r"\bcolon\b|\bcolonic\b|\bcolorectal\b|\blarge (?:bowel|intestine)\b", "colon"),
    (r"\blungs?\b|\bpulmonary\b|\bpleura\w*|\bbronch\w*", "lung"),
    (r"\bspleen\b|\bsplenic\b", "spleen"),
    (r"\burinary bladder\b|\bbladder\b|\bvesical\b", "bladder"),
    (r"\bstomach\b|\bgastric\b|\bantrum\b|\bpylor\w*|\bgastric fundus\b", "stomach"),
    (r"\bbones?\b|\bosseous\b|\bskelet\w*|\bvertebra\w*|\bribs?\b|\bfemur\b|\bfemoral head\b|\bsacrum\b"
     r"|\biliac bone\b|\bsternum\b|\bscapula\b|\bhumerus\b|\blytic\b|\bsclerotic\b", "bone"),
    (r"\bbrain\b|\bcerebr\w*|\bcerebell\w*|\bintracranial\b|\bfrontal lobe\b|\bparietal lobe\b"
     r"|\btemporal lobe\b|\boccipital lobe\b", "brain"),
    (r"\bduoden\w*", "duodenum"),
    (r"\b(?:o)?esophag\w*", "esophagus"),
    (r"\bsmall (?:bowel|intestine)\b|\bileum\b|\bjejun\w*", "small intestine"),
    (r"\bprostat\w*", "prostate"),
    (r"\buter(?:us|ine)\b", "uterus"),
    (r"\bovar(?:y|ies|ian)\b", "ovary"),
    (r"\bthyroid\b", "thyroid"),
    (r"\bbreasts?\b", "breast"),
]
#: organs with a left and a right one (side is kept); for the liver "left/right" names a lobe
PAIRED_ORGANS = {"kidney", "adrenal", "lung", "ovary", "breast"}

#: generic words that, after "in the (left|right)", name a place this parser does not know
LOCATION_PREPOSITION = r"\b(?:in|within|of|at|involving|arising from|from) (?:the )?(?:(?:left|right) )?(?P<word>[a-z]{3,})\b"

# --- lesion types, counts, sizes -------------------------------------------------------------

#: (pattern, lesion word) — specific names first; the knowledge table resolves word + organ
LESION_WORDS = [
    (r"\bhepatocellular (?:carcinoma|cancer)\b|\bhcc\b|\bhepatoma\b", "hepatocellular carcinoma"),
    (r"\bcholangiocarcinoma\b", "cholangiocarcinoma"),
    (r"\brenal cell (?:carcinoma|cancer)\b|\brcc\b|\bclear[- ]cell (?:renal )?carcinoma\b", "renal cell carcinoma"),
    (r"\bpdac\b|\bpancreatic (?:ductal )?adenocarcinoma\b", "pancreatic adenocarcinoma"),
    (r"\bipmn\b|\b(?:mucinous|serous) cyst\w*|\bcystic (?:neoplasm|tumou?r)\b|\bcystadenoma\b",
     "pancreatic cystic neoplasm"),
    (r"\bangiomyolipoma\b|\baml\b", "angiomyolipoma"),
    (r"\bfocal nodular hyperplasia\b|\bfnh\b", "focal nodular hyperplasia"),
    (r"\bneuroendocrine (?:tumou?r|neoplasm|carcinoma)\b|\bpnet\b|\bnet\b", "neuroendocrine tumor"),
    (r"\bmetasta\w*|\bmets\b|\bsecondar(?:y|ies) (?:deposits?|lesions?)\b|\bdeposits?\b", "metastasis"),
    (r"\bh(?:a)?emangioma\w*", "hemangioma"),
    (r"\badenoma\w*", "adenoma"),
    (r"\blymphoma\w*", "lymphoma"),
    (r"\babscess\w*", "abscess"),
    (r"\bpolyps?\b", "polyp"),
    (r"\bcysts?\b|\bcystic lesions?\b", "cyst"),
    (r"\badenocarcinoma\b|\bcarcinoma\w*|\bcancer\w*|\bmalignan\w*", "carcinoma"),
    (r"\bneoplasms?\b|\btumou?rs?\b", "tumor"),
    (r"\blymphadenopathy\b|\benlarged (?:lymph )?nodes?\b|\blymph[- ]?nodes?\b", "lymph node"),
    (r"\bnodules?\b|\bnodular (?:lesions?|opacit\w*)\b", "nodule"),
    (r"\bmass(?:es)?\b", "mass"),
    (r"\blesions?\b|\bfocus\b(?= (?:in|of|within|at|is|was|measuring|seen|noted|[.,;]|$))"
     r"|\bopacit(?:y|ies)\b|\bconsolidation\b|\bthickening\b|\bspace[- ]occupying\b|\btumefaction\b", "lesion"),
]
LESION_NOUN = "|".join(p for p, _ in LESION_WORDS)

NUMBER_WORDS = {
    "one": 1, "single": 1, "solitary": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "a pair of": 2, "both": 2,
}
MULTIPLE_WORDS = r"\b(?:multiple|several|numerous|many|innumerable|scattered|few|multifocal|diffuse|various|countless)\b"

SIZE_UNIT = r"(?P<unit>mm|millimet(?:er|re)s?|cm|centimet(?:er|re)s?)\b"
_NUM = r"\d{1,4}(?:[.,]\d{1,3})?"
SIZE = (
    rf"(?P<a>{_NUM})\s*(?:mm|cm)?\s*(?:x|\*|by)\s*(?P<b>{_NUM})"
    rf"(?:\s*(?:mm|cm)?\s*(?:x|\*|by)\s*(?P<c>{_NUM}))?\s*{SIZE_UNIT}"
    rf"|(?P<single>{_NUM})\s*{SIZE_UNIT.replace('unit', 'unit1')}"
)
SIZE_WORDS = (
    r"\b(?:tiny|small|subcentimet(?:er|re)|large|big|huge|bulky|massive|giant|medium[- ]sized|sizable)\b"
)
ORDINALS = (
    r"\b(?:largest|larger|biggest|bigger|smaller|smallest|dominant|index|first|second|third|"
    r"most (?:superior|inferior|anterior|posterior|medial|lateral)|upper|lower|more (?:superior|inferior))\b"
    r"(?= (?:[\w.,-]+ ){0,6}(?:" + LESION_NOUN + r"|one\b))"
)

#: words that carry no lesion information: never reported as "not understood"
FILLER = frozenset(
    """a an the and or of in on at to with within into from by for as is are was were be been being
    there this that these those it its which who whose seen noted shows show showing shown demonstrates
    demonstrated demonstrating reveals revealed identified present presents visible visualised visualized
    appears appear appearing measuring measures measure measured approximately approx about around up
    ct scan image images imaging study exam examination findings finding impression contrast enhanced
    internal internally density densities attenuation attenuating margin margins border borders boundary
    boundaries edge edges contour contours area areas region regions part parts portion component components
    focus foci spot spots also additional additionally further another other some slightly mildly markedly
    relatively very mild moderate marked predominantly mainly mostly partly partially roughly nearly almost
    adjacent surrounding neighbouring neighboring nearby organs organ structure structures tissue parenchyma
    lobe lobes side sided demarcation interface relationship relation related closely close
    has have had having can may might could would will shall should do does did not no without
    its their his her one two three four five six seven eight nine ten first second third
    mm cm size sized diameter largest axis long short dimension dimensions level
    phase arterial venous portal delayed enhancement enhancing pattern appearance character
    left right bilateral upper lower middle anterior posterior superior inferior medial lateral
    central peripheral proximal distal deep superficial
    lesion lesions consistent compatible mixed linear punctate tubular nodular small enlarged thin thick
    hu pure solid gland one""".split()
)

#: the phrase tables leave-one-type-out measurement ablates (``query/holdout.py``)
HOLDOUT_TABLES = (
    "NEGATION_TRIGGERS", "POST_NEGATION", "NEGATION_STOP", "UNCERTAINTY", "RELATION_NOT", "RELATION_CLOSE",
    "SHAPE", "DENSITY", "DENSITY_COMPONENT_BEFORE", "DENSITY_COMPONENT_AFTER", "DENSITY_SELF_AREA",
    "DENSITY_SELF_BEFORE", "DENSITY_SELF_AFTER", "DENSITY_VARIATION", "SURFACE", "ENHANCEMENT",
    "SPECIFIC_FEATURES", "SUB_LOCATIONS", "ORGANS", "LESION_WORDS", "MULTIPLE_WORDS", "SIZE_WORDS",
)


def on_holdout_change() -> None:
    """Keep the patterns derived from ``LESION_WORDS`` in step when a table is swapped."""
    global LESION_NOUN
    from . import tables

    LESION_NOUN = "|".join(p for p, _ in LESION_WORDS)
    tables.clear()
