"""XQuAD-R (LAReQA): 11 languages, 1190 parallel questions each, CC BY-SA 4.0."""

from .lareqa import Benchmark

NAME = "xquad-r"

XQUAD_R = Benchmark(
    name=NAME,
    languages=("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"),
    commit="9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c",
    upstream_dir="xquad-r",
    md5={
        "ar": "1114954691ce6b8ed452aa2befcd21c2",
        "de": "ca34197b707b08bd4e03db4b3640e863",
        "el": "d4982e87c3eff32830cc4d33a26e63fa",
        "en": "b8c2383f52bc96438cf09a69cdccabdd",
        "es": "e4a69ab74a1f71d64f771f419c6e3eea",
        "hi": "390ee65a0559e65033f4cc44a27617fe",
        "ru": "e6ef8814695fead9f2227d9b44144417",
        "th": "1270594bf229e0fa2082d6508095e0b1",
        "tr": "6ee6aed1a7a5745b2cd31322c7d58c15",
        "vi": "72a138effea0cea9d5f7573553d70809",
        "zh": "2122b7e42e66c2d3cbdbe78d21b1a11c",
    },
    license="CC BY-SA 4.0 (XQuAD, LAReQA)",
    description=(
        "XQuAD-R is the retrieval version of XQuAD (240 paragraphs of SQuAD v1.1 dev translated "
        "into 10 languages) from LAReQA: every sentence is a candidate, and each of the 1190 "
        "questions has exactly one relevant sentence per language (11 in the pool)."
    ),
    card_dataset="xquad",
    card_license="cc-by-sa-4.0",
    card_data=("XQuAD-R (LAReQA, google-research-datasets/lareqa, built from XQuAD, CC BY-SA 4.0). The weights are "
               "derived from that data and carry its terms (attribution, share-alike)."),
    card_limitation="XQuAD-R is 1,190 SQuAD questions translated into 11 languages: one topic distribution, and "
                    "the same questions in every language",
    bibtex="""@inproceedings{artetxe-etal-2020-cross,
  title = "On the Cross-lingual Transferability of Monolingual Representations",
  author = "Artetxe, Mikel and Ruder, Sebastian and Yogatama, Dani",
  booktitle = "Proceedings of the 58th Annual Meeting of the Association for Computational Linguistics",
  year = "2020",
  pages = "4623--4637",
  url = "https://aclanthology.org/2020.acl-main.421"
}""",
)
