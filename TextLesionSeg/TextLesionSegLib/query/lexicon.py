"""General English radiology lexicon: phrasings of every attribute written from radiology
teaching, not from any coded file (docs/query.md, "Generalisation").

Same table names and forms as :mod:`.vocabulary`; :mod:`.tables` merges the two (this lexicon's
alternatives first within each value). Sources, per block: margin and shape descriptors of the
Fleischner Society glossary (Radiology 2008) and BI-RADS/LI-RADS margin categories; bowel
(serosal) and interface wording of CT staging reports (TNM T3/T4 descriptors); Couinaud's liver
segments and the standard lobar/segmental anatomy of lung, kidney, pancreas and colon; NegEx's
trigger classes (Chapman 2001) for negation and uncertainty. Frozen: phrases added because of a
report go into :mod:`.vocabulary`, where held-out folds ablate them.
"""

from __future__ import annotations

_MARGIN = (r"(?:margins?|borders?|boundar(?:y|ies)|edges?|outlines?|contours?|interfaces?|demarcation"
           r"|surfaces?|serosa|serosal surface|outer (?:wall|surface|contour))")
_BAD = (r"(?:indistinct|unclear|blurred|blurry|fuzzy|hazy|obscured|ragged|shaggy|rough(?:ened)?|irregular"
        r"|spiculated|lobulated|microlobulated|jagged|serrated|infiltrative|ill[- ]defined|poorly defined"
        r"|poorly demarcated|vague|uneven|effaced|lost)")
_GOOD = r"(?:sharp|clear|smooth|distinct|crisp|regular|well[- ]defined|well[- ]demarcated|intact)"
_DEGREE = r"(?:(?:slightly|somewhat|rather|partly|partially|markedly|mostly|relatively) )?"
_BE = r"(?:is |are |was |were |appears? |appearing |seems? |remains? )?"
_OF = r"(?: (?:of|with|to|from) (?:the )?[a-z]+(?: [a-z]+)?)?"

# --- negation and uncertainty (NegEx trigger classes) ------------------------------------------
NEGATION_TRIGGERS = (
    r"\bno\b|\bnot\b|\bwithout\b|\babsence of\b|\babsent\b|\bnegative for\b|\bfree of\b"
    r"|\bno (?:evidence|signs?) of\b|\bruled out\b|\bexcluded\b|\bnor\b|\bneither\b"
)
POST_NEGATION = (
    r"\b(?:is|are|was|were) (?:not (?:seen|identified|present|detected|visuali[sz]ed|demonstrated|evident"
    r"|appreciated|noted)|absent|excluded|ruled out)\b"
)
UNCERTAINTY = (
    r"\bpossibl[ey]\b|\bprobabl[ey]\b|\blikely\b|\bunlikely\b|\bsuspicious (?:for|of)\b|\bsuspect(?:ed)?\b"
    r"|\bsuggest(?:s|ive of|ing)\b|\bconcerning for\b|\bworrisome for\b|\bcannot (?:be )?(?:excluded?|ruled? out)\b"
    r"|\bcan ?not (?:exclude|rule out)\b|\bnot (?:be )?(?:excluded|ruled out)\b|\brule out\b|\br/o\b"
    r"|\bquestionable\b|\bequivocal\b|\bindeterminate\b|\b(?:may|could|might) (?:represent|be)\b"
    r"|\bdifferential\b|\bversus\b|\bvs\b|\bpresum\w+|\bfavou?r(?:ed|s)?\b|\?"
)

# --- relation to neighbours (TNM-style invasion wording) ---------------------------------------
_ORGAN = r"(?P<organ>[^.;,]{1,40}?)"
RELATION_NOT = [
    r"\bno (?:evidence of |signs? of )?(?:local |direct |adjacent )?(?:invasion|infiltration|involvement|extension|encasement)"
    r"(?: (?:of|into|to) (?:the )?[a-z ]{1,40}?(?=[.;,]|$))?",
    r"\b(?:fat planes?|interfaces?|boundar(?:y|ies)|demarcation|cleavage planes?) (?:with|to|from|between) (?:the )?"
    r"[a-z ]{1,30}? (?:is |are )?(?:preserved|intact|clear|maintained|distinct|sharp)\b",
    r"\b(?:preserved|intact|maintained) (?:fat|cleavage) planes?\b",
    r"\b(?:clearly )?(?:separate|separable|distinct) from (?:the )?[a-z ]{1,40}?(?=[.;,]|$| with\b| and\b)",
    r"\bdoes not (?:invade|involve|abut|extend|infiltrate|encase)\b(?: (?:into |to )?(?:the )?[a-z ]{1,40}?(?=[.;,]|$))?",
    r"\bwithout (?:evidence of )?(?:invasion|involvement|extension|infiltration|encasement|contact)"
    r"(?: (?:of|into|to|with) (?:the )?[a-z ]{1,40}?(?=[.;,]|$))?",
    r"\bconfined to (?:the )?[a-z]+\b",
]
RELATION_CLOSE = [
    r"\b(?:invad(?:es|ing|ed)|invasion (?:of|into)|infiltrat(?:es|ing|ed)(?: into)?|encas(?:es|ing|ed)|encasement of"
    r"|abut(?:s|ting|ted)|involv(?:es|ing|ement of)|inseparable from|indistinguishable from"
    r"|cannot be (?:clearly )?(?:separated|distinguished|delineated) from|adherent to|tethered to"
    r"|extend(?:s|ing)? (?:in)?to|protrud(?:es|ing) into|in (?:close |intimate )?contact with|compress(?:es|ing)"
    r"|displac(?:es|ing)|obstruct(?:s|ing)) (?:the )?" + _ORGAN + r"(?=,| with\b| and\b|[.;]|$)",
    r"\b(?:loss of|obliterat\w+|effac\w+|indistinct|unclear|blurred|absent|lost) (?:the )?(?:fat(?:ty)?|cleavage) planes?"
    r"(?: (?:with|to|from|between) (?:the )?" + _ORGAN + r"(?=[.;,]|$| and\b))?",
    r"\b" + _BAD + r" (?:interfaces?|boundar(?:y|ies)|demarcation|borders?|margins?) (?:with|to|from|between) (?:the )?"
    + _ORGAN + r"(?=[.;,]|$| and\b)",
    r"\b(?:interfaces?|boundar(?:y|ies)|demarcation|borders?|margins?) (?:with|to|from) (?:the )?" + _ORGAN
    + r" " + _BE + _DEGREE + r"(?:" + _BAD[3:-1] + r"|not (?:clear|distinct|seen|preserved|sharp))\b",
]

# --- shape (Fleischner / BI-RADS shape descriptors) --------------------------------------------
SHAPE = [
    (r"\b(?:round|rounded|roundish|round[- ]like|oval|ovoid|ovoidal|spherical|circular|elliptical|ellipsoid"
     r"|globular|quasi[- ]?(?:round|circular)|sub[- ]?(?:round|circular)|near[- ]?round)\b", "round-like"),
    (r"\birregular(?:ly)?(?: shaped| in shape| shape| configuration| morphology)?\b"
     r"|\b(?:lobulated|lobular|multilobulated|polylobulated|lobed)\b"
     r"|\b(?:wedge|triangular|band|strip|cord|plaque|sheet|crescent|flame|finger)[- ]?(?:shaped|like)\b"
     r"|\b(?:annular|circumferential|apple[- ]core|cauliflower[- ]like|fungating|ulcerat(?:ed|ing)|amorphous"
     r"|bizarre|geographic)\b|\bdeform(?:ed|ing|ity)\b", "irregular"),
]

# --- density (attenuation relative to the surrounding tissue) ----------------------------------
DENSITY = [
    (r"\bmixed (?:density|attenuation)\b|\bpart[- ]?solid\b|\bpartly solid\b|\bpartially solid\b|\bsubsolid\b"
     r"|\bsemi[- ]?solid\b|\bground[- ]?glass (?:and|with) (?:an? )?(?:solid|soft[- ]tissue)\b", "mixed"),
    (r"\bhyper[- ]?(?:dense|density|attenuat\w*)\b|\b(?:high|higher|increased|elevated|raised)[- ](?:density|attenuation)\b"
     r"|\b(?:density|attenuation) (?:is |was )?(?:high|higher|increased|elevated)\b|\bdenser than\b", "hyperdense"),
    (r"\biso[- ]?(?:dense|density|attenuat\w*)\b|\b(?:similar|equal|comparable|same) (?:density|attenuation)\b"
     r"|\b(?:density|attenuation) (?:similar|equal|comparable) to\b|\bsoft[- ]tissue (?:density|attenuation)\b",
     "isodense"),
    (r"\bhypo[- ]?(?:dense|density|attenuat\w*)\b|\b(?:low|lower|decreased|reduced|diminished)[- ](?:density|attenuation)\b"
     r"|\b(?:density|attenuation) (?:is |was )?(?:low|lower|decreased|reduced)\b"
     r"|\b(?:fluid|water|near[- ]water|fat|fatty)[- ]?(?:density|attenuation)\b|\bground[- ]?glass\b|\bggo\b|\bggn\b"
     r"|\bcystic\b|\blucent\b|\blucency\b|\blytic\b", "hypodense"),
]

# --- density variation -------------------------------------------------------------------------
DENSITY_VARIATION = [
    (r"\b(?:in|non[- ]?|un)homogene\w*|\bnot homogene\w*|\bheterogene\w*|\bnon[- ]?uniform(?:ly)?\b|\bnot uniform\b"
     r"|\buneven(?:ly)?\b|\bmottled\b|\bvariegated\b|\bmosaic\b|\bmixed (?:internal )?(?:texture|appearance|content)\b"
     r"|\b(?:irregular|patchy|variable) (?:enhancement|attenuation|density|texture)\b", "heterogeneous"),
    (r"\bhomogene\w*|\buniform(?:ly)?\b|\beven(?:ly)? (?:density|attenuation|enhancement|texture)\b"
     r"|\b(?:density|attenuation|texture) (?:is |was )?(?:even|uniform)\b", "homogeneous"),
]
#: what implies a variation when none is stated: internal components (heterogeneous); simple fluid (homogeneous)
DENSITY_VARIATION_IMPLIED = [
    (r"\b(?:areas?|foci|focus|regions?|zones?|components?|portions?|spots?) of (?:\w+ ){0,2}(?:necrosis|h(?:a)?emorrhage"
     r"|calcifications?|low|high|fluid|fat|cystic|decreased|increased|hypo\w+|hyper\w+)"
     r"|\b(?:necrotic|cystic|solid|h(?:a)?emorrhagic|calcified|fatty) (?:areas?|foci|components?|portions?|cent(?:re|er)"
     r"|regions?|changes?|degeneration)\b|\b(?:internal|central|intralesional) (?:necrosis|h(?:a)?emorrhage|calcifications?"
     r"|septations?|cystic change|low|scar|fat)\b|\bsolid and cystic\b|\b(?:cystic|solid)[- ](?:solid|cystic)\b"
     r"|\bmixed\b|\bpart[- ]?solid\b", "heterogeneous"),
    (r"\bsimple (?:cysts?|fluid)\b|\b(?:fluid|water|near[- ]water)[- ]?(?:density|attenuation)\b", "homogeneous"),
]

# --- surface / margin, every organ ------------------------------------------------------------
SURFACE = [
    (r"\b(?:ill|poorly|vaguely|incompletely)[- ]?(?:defined|circumscribed|demarcated|marginated|delineated|outlined)\b"
     r"|\bnot (?:well|clearly|sharply)[- ]?(?:defined|circumscribed|demarcated|marginated|delineated)\b"
     r"|\b" + _BAD + r"(?: [a-z]+){0,2} " + _MARGIN + r"\b"
     r"|\b" + _MARGIN + _OF + r" " + _BE + _DEGREE + r"(?:" + _BAD[3:-1] + r"|not (?:clear|sharp|well defined|distinct"
     r"|smooth|regular))\b"
     r"|\bserosal? (?:irregularity|roughening|stranding|involvement|invasion|breach|nodularity)\b"
     r"|\b(?:peri(?:colic|rectal|enteric|gastric|pancreatic|renal|nephric|hepatic|tumou?ral)|surrounding) fat"
     r" (?:stranding|infiltration)\b|\bfat stranding\b|\bspicul\w+|\bcorona radiata\b|\bstellate\b|\bsunburst\b"
     r"|\blobulation\b|\bblurr(?:ed|y)\b|\bfuzzy\b|\bindistinct(?:ly)?\b|\binfiltrative\b", "ill-defined"),
    (r"\b(?:well|sharply|clearly|smoothly|cleanly|crisply)[- ]?(?:defined|circumscribed|demarcated|marginated"
     r"|delineated|outlined|bordered)\b|\b(?:circumscribed|encapsulated|capsulated)\b"
     r"|\b" + _GOOD + r"(?: [a-z]+){0,2} " + _MARGIN + r"\b"
     r"|\b" + _MARGIN + _OF + r" " + _BE + _DEGREE + _GOOD + r"\b", "well-defined"),
]

# --- scan phase --------------------------------------------------------------------------------
ENHANCEMENT = [
    (r"\b(?:non[- ]?contrast|unenhanced|non[- ]?enhanced|pre[- ]?contrast|plain)(?:[- ]enhanced)?"
     r" (?:ct|scan|images?|study|phase|examination|series)\b|\bwithout (?:iv |intravenous )?contrast\b"
     r"|\bncct\b|\bnect\b|\bnon[- ]?contrast\b|\bunenhanced\b", "non-contrast"),
    (r"\bcontrast[- ]?enhanced\b|\bpost[- ]?contrast\b|\bcect\b|\benhanced (?:ct|scan|images?|study|examination)\b"
     r"|\b(?:after|following|with) (?:the )?(?:administration of )?(?:iv |intravenous )?contrast\b"
     r"|\b(?:arterial|portal[- ]?venous|venous|delayed|nephrographic|corticomedullary|excretory|equilibrium"
     r"|pancreatic) phases?\b|\bmultiphas(?:e|ic)\b|\b(?:triple|dual|biphasic)[- ]phase\b|\benhanc(?:es|ing|ement)\b"
     r"|\bwash(?:es)?[- ]?out\b", "contrast-enhanced"),
]

# --- anatomy: where in the organ (Couinaud; lobar anatomy; pancreas, kidney, colon parts) --------
_SEG = r"(?:viii|vii|vi|iva|ivb|iv|v|iii|ii|i|[1-8][ab]?)"
SUB_LOCATIONS = [
    (r"\b(?:(?:liver|hepatic|couinaud) )?(?:segments?|segs?\.?|sg) ?(?P<seg>" + _SEG + r")\b(?! ?(?:cm|mm|x\b))"
     r"(?:(?: ?[,/-] ?| and | or | to )(?:s|seg )?" + _SEG + r"\b(?! ?(?:cm|mm)))*", "liver", "segment", None),
    (r"\bs(?P<seg>[1-8])[ab]?\b(?:(?: ?[,/-] ?| and )s?[1-8]\b)*", "liver", "segment", None),
    (r"\bcaudate(?: lobe| process)?\b", "liver", "caudate lobe", None),
    (r"\bleft lateral (?:segments?|section|sector)\b", "liver", "left lobe", None),
    (r"\bleft medial (?:segment|section|sector)\b", "liver", "segment IV", None),
    (r"\bright (?:anterior|posterior) (?:segments?|section|sector)\b|\b(?:hepatic|liver) dome\b|\bdome of the liver\b",
     "liver", "right lobe", None),
    (r"\b(?P<side>right|left) (?:hepatic|liver) lobe\b|\b(?P<side2>right|left) lobe of (?:the )?liver\b"
     r"|\b(?:hepatic|liver) (?P<side3>right|left) lobe\b|\b(?P<side4>right|left) hemi-?liver\b", "liver", "lobe", None),
    (r"\b(?P<pole>upper|lower|superior|inferior) pole\b|\b(?P<mid>interpolar|mid[- ]?pole|midpole)\b", "kidney", "pole", None),
    (r"\b(?P<side>right|left) (?P<lobe>upper|middle|lower) (?:lung )?lobe\b"
     r"|\b(?P<lobe2>upper|middle|lower) lobe of (?:the )?(?P<side2>right|left) lung\b", "lung", "lung lobe", None),
    (r"\b(?P<abbr>rul|rml|rll|lul|lll)\b", "lung", "lung lobe", None),
    (r"\blingula(?:r)?(?: segments?)?\b", "lung", "left upper lobe", "left"),
    (r"\b(?:pancreatic )?uncinate(?: process)?\b", "pancreas", "uncinate process", None),
    (r"\b(?:pancreatic|pancreas) (?P<part>head|neck|body|tail)\b|\b(?P<part2>head|neck|body|tail)(?: region)?"
     r" (?:of|region of) (?:the )?pancrea(?:s|tic)\b|\b(?P<part3>head|neck|body|tail)[- /](?:neck|body|tail)"
     r" of (?:the )?pancreas\b", "pancreas", "pancreas part", None),
    (r"\bc(?:a|ae)?ecum\b|\bc(?:a|ae)?ecal\b", "colon", "cecum", None),
    (r"\bascending colon\b", "colon", "ascending colon", None),
    (r"\bhepatic flexure\b", "colon", "hepatic flexure", None),
    (r"\btransverse colon\b", "colon", "transverse colon", None),
    (r"\bsplenic flexure\b", "colon", "splenic flexure", None),
    (r"\bdescending colon\b", "colon", "descending colon", None),
    (r"\brecto[- ]?sigmoid\b", "colon", "rectosigmoid", None),
    (r"\bsigmoid(?: colon)?\b", "colon", "sigmoid colon", None),
    (r"\brect(?:um|al)\b", "colon", "rectum", None),
]
ORGANS = [
    (r"\bliver\b|\bhepatic\b", "liver"),
    (r"\bkidneys?\b|\brenal\b", "kidney"),
    (r"\bpancrea(?:s|tic)\b", "pancreas"),
    (r"\bcolon\b|\bcolonic\b|\bcolorectal\b|\blarge (?:bowel|intestine)\b", "colon"),
    (r"\blungs?\b|\bpulmonary\b", "lung"),
    # session 8, after the freeze (realistic phrasings for issue 19): "both lower lobes" are the lungs'
    (r"\b(?:both|bilateral) (?:upper|lower) lobes?\b", "lung"),
    (r"\bspleen\b|\bsplenic\b", "spleen"),
    (r"\badrenals?\b|\bsupra[- ]?renal\b", "adrenal"),
    (r"\bgall[- ]?bladder\b", "gallbladder"),
    (r"\bstomach\b|\bgastric\b", "stomach"),
    (r"\bduoden(?:um|al)\b", "duodenum"),
]

# --- lesion nouns and counts -----------------------------------------------------------------
LESION_WORDS = [
    (r"\bmetasta\w*|\bmets\b", "metastasis"),
    (r"\bcysts?\b", "cyst"),
    (r"\bcarcinoma\w*|\bcancers?\b", "carcinoma"),
    (r"\btumou?rs?\b|\bneoplasms?\b", "tumor"),
    (r"\bnodules?\b", "nodule"),
    (r"\bmass(?:es)?\b", "mass"),
    (r"\blesions?\b|\bspace[- ]occupying\b|\babnormalit(?:y|ies)\b", "lesion"),
]
MULTIPLE_WORDS = r"\b(?:multiple|several|numerous|many|innumerable|scattered|multifocal|countless|various|bilateral)\b"
#: everyday shorthand rewritten before reading ("rt kidney" → "right kidney")
SHORTHAND = [
    (r"\brt\.?(?= )", "right"),
    (r"\blt\.?(?= )", "left"),
    (r"\bbilat\.?(?= )", "bilateral"),
    (r"\bw/o\b", "without"),
    (r"\bw/(?= ?\w)", "with "),
    (r"\bsegs?\. ?(?=\w)", "segment "),
    # single-letter sides before an anatomical word (session 8, after the freeze: realistic
    # phrasings written for issue 19): "R upper lobe", "L kidney"
    (r"\br\.?(?= (?:upper|middle|lower|lobe|lung|kidney|renal|adrenal|hepatic|breast|ovary|ovarian)\b)", "right"),
    (r"\bl\.?(?= (?:upper|middle|lower|lobe|lung|kidney|renal|adrenal|hepatic|breast|ovary|ovarian)\b)", "left"),
]
#: paired-organ words meaning both sides
BILATERAL = (r"\bbilateral(?:ly)?\b|\bboth (?:kidneys|lungs|adrenals?|adrenal glands|ovaries|breasts|sides)\b"
             r"|\bboth (?:upper|lower) lobes\b")
#: both lobes of the liver (added after the freeze, session 8: realistic phrasings written for
#: issue 19, not from a coded file); read as the liver's side ``bilateral`` (Slicer's Right and left)
LIVER_BOTH_LOBES = (r"\bboth (?:hepatic |liver )?lobes\b|\bbi-?lobar\b|\bbilobular\b"
                    r"|\b(?:right and left|left and right) (?:hepatic |liver )?lobes\b")

HOLDOUT_TABLES = (
    "NEGATION_TRIGGERS", "POST_NEGATION", "UNCERTAINTY", "RELATION_NOT", "RELATION_CLOSE", "SHAPE", "DENSITY",
    "DENSITY_VARIATION", "DENSITY_VARIATION_IMPLIED", "SURFACE", "ENHANCEMENT", "SUB_LOCATIONS", "ORGANS",
    "LESION_WORDS", "MULTIPLE_WORDS", "BILATERAL", "LIVER_BOTH_LOBES",
)


def on_holdout_change() -> None:
    """Merged tables are rebuilt after a held-out fold swaps one of these."""
    from . import tables

    tables.clear()
