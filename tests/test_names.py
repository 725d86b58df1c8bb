"""The names and Multi30k loaders on the real files (skipped without the shared data)."""

from collections import Counter

from rnnlab.data.multi30k import detokenize, load_multi30k, tokenize
from rnnlab.data.names import LANGUAGES, load_names, stratified_split
from rnnlab.data.vocabulary import UNK_ID, Vocabulary


def test_names_loader_and_stratified_split(data_dir):
    pairs = load_names(data_dir, download=False)
    assert len(set(pairs)) == len(pairs) == 18015  # 20,074 lines less repeated pairs
    assert {lang for _, lang in pairs} == set(LANGUAGES)
    assert ("Nguyen", "Vietnamese") in pairs
    splits = stratified_split(pairs, valid=0.1, test=0.1, seed=0)
    assert sorted(sum(splits.values(), [])) == sorted(pairs)
    totals = Counter(lang for _, lang in pairs)
    for split in ("valid", "test"):
        counts = Counter(lang for _, lang in splits[split])
        for lang in LANGUAGES:
            assert abs(counts[lang] - 0.1 * totals[lang]) <= 1
    assert stratified_split(pairs, seed=0) == splits


def test_multi30k_loader(data_dir):
    sizes = {
        split: len(load_multi30k(split, data_dir, download=False)) for split in ("valid", "test")
    }
    assert sizes == {"valid": 1014, "test": 1000}
    en, de = load_multi30k("test", data_dir, download=False)[0]
    assert en.startswith("A man in an orange hat")
    assert tokenize(de)[-3:] == ["etwas", "anstarrt", "."]
    assert detokenize(tokenize(de)) == de.lower()


def test_vocabulary_round_trip():
    vocab = Vocabulary.build([["a", "b", "a"], ["c", "a"]], min_freq=1)
    assert vocab.to_list() == ["a", "b", "c"]
    assert vocab.decode(vocab.encode(["a", "c"])) == ["a", "c"]
    assert vocab.encode(["zzz"]) == [UNK_ID]
    assert Vocabulary(vocab.to_list()).itos == vocab.itos
