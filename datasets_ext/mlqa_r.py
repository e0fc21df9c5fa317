"""MLQA-R (LAReQA): 7 languages, questions of the MLQA dev set, CC BY-NC 4.0."""

from .lareqa import Benchmark

NAME = "mlqa-r"

MLQA_R = Benchmark(
    name=NAME,
    languages=("ar", "de", "en", "es", "hi", "vi", "zh"),
    commit="343180b90dcd00aa50a3fd2832787ed6b8860256",
    upstream_dir="mlqa-dev-r",
    md5={
        "ar": "0cabca7da64041a9bcfbfa6397def23e",
        "de": "5fdb66b2614ed2556d05356968eca0b2",
        "en": "9ea5e240816f8a9c668ec49afbf45e7d",
        "es": "1dc80d875f9e37192668eb90bf3e8a2d",
        "hi": "84cee6c9864f8662ef1ef3ed5b96f990",
        "vi": "395e63b077fb8af6735ca9c4337d656c",
        "zh": "b9c78c32a0008dba5f93aea0ac5c2429",
    },
    license="CC BY-NC 4.0 (MLQA, LAReQA)",
    description=(
        "MLQA-R is the retrieval version of the MLQA dev set from LAReQA: every sentence of the "
        "Wikipedia paragraphs is a candidate; a question's id exists in 2 to 4 languages, so a "
        "cross-lingual pair X-Y only has the questions whose id also exists in Y."
    ),
    card_dataset="mlqa",
    card_license="cc-by-nc-4.0",
    card_data=("MLQA-R (LAReQA, google-research-datasets/lareqa, built from MLQA, CC BY-NC 4.0). The weights are "
               "derived from that data and carry its terms: **non-commercial use**."),
    card_limitation="MLQA-R's parallel examples all include English, so its cross-lingual training pairs are "
                    "English-centred",
    bibtex="""@inproceedings{lewis-etal-2020-mlqa,
  title = "{MLQA}: Evaluating Cross-lingual Extractive Question Answering",
  author = "Lewis, Patrick and Oguz, Barlas and Rinott, Ruty and Riedel, Sebastian and Schwenk, Holger",
  booktitle = "Proceedings of the 58th Annual Meeting of the Association for Computational Linguistics",
  year = "2020",
  pages = "7315--7330",
  url = "https://aclanthology.org/2020.acl-main.653"
}""",
)
