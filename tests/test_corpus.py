"""bert_tutor.corpus: the generated world, Python's help topics and the learner's own files."""

import warnings

import pytest

from bert_tutor.corpus import ANIMALS, JOBS, pydoc_documents, read_documents, world_documents, world_probes


def test_world_is_deterministic_per_seed_and_sized_by_its_parameter():
    assert world_documents(20, seed=1) == world_documents(20, seed=1)
    assert world_documents(20, seed=1) != world_documents(20, seed=2)
    assert len(world_documents(37)) == 37
    assert all(7 <= len(doc) <= 10 for doc in world_documents(200))


def test_every_document_tells_its_story_in_the_same_order():
    later = ["is called", "belongs to", "every morning", "buy from", "carries the", "comes home"]
    for doc in world_documents(100):
        person = doc[0].split()[0]
        assert [s.split()[:2] for s in doc[:4]] == [
            [person, verb] for verb in ("lives", "works", "has", "owns")
        ]
        order = [next(i for i, words in enumerate(later) if words in s) for s in doc[4:]]
        assert order == sorted(set(order)) and len(order) >= 3


def test_world_facts_recur_inside_a_document():
    for doc in world_documents(50):
        person = doc[0].split()[0]
        assert sum(person in s.split() for s in doc) >= 5
        job = next(w for s in doc for w in s.split() if w in JOBS)
        assert sum(job in s.split() for s in doc) >= 1


def test_first_mentions_are_right_probes_and_the_right_words_give_them_away():
    probes = world_probes(100)
    right = [p for p in probes if p.side == "right"]
    left = [p for p in probes if p.side == "left"]
    assert len(right) == 200 and left  # each document: a first mention of its job and its animal
    for probe in right:
        words = probe.sentences[probe.sentence].split()
        assert words[probe.word] == probe.answer
        before = " ".join(probe.sentences[: probe.sentence] + (" ".join(words[: probe.word]),)).split()
        assert probe.answer not in before
        after = " ".join(words[probe.word + 1 :])
        assert (JOBS.get(probe.answer) or ANIMALS[probe.answer]) in after


def test_give_away_words_name_exactly_one_job_or_animal():
    assert len(set(JOBS.values())) == len(JOBS)
    assert len(set(ANIMALS.values())) == len(ANIMALS)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_world_size_is_refused(bad):
    with pytest.raises(ValueError, match="num_documents must be a positive int"):
        world_documents(bad)


def test_pydoc_topics_become_documents_of_sentences():
    documents = pydoc_documents()
    assert len(documents) > 50
    assert all(len(doc) >= 2 for doc in documents)
    assert sum(len(doc) for doc in documents) > 1000


def test_own_file_in_bert_format(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("First one.\nSecond one.\n\n\nAnother doc.\nWith two.\nAnd three.\n", encoding="utf-8")
    assert read_documents(path) == [
        ["First one.", "Second one."],
        ["Another doc.", "With two.", "And three."],
    ]


def test_short_document_is_skipped_with_a_warning_naming_file_and_line(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("A.\nB.\n\nlonely\n\nC.\nD.", encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert read_documents(path) == [["A.", "B."], ["C.", "D."]]
    assert any("mine.txt, line 4" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no document"),
        (b"\x00\x01\x02binary", "binary"),
        (b"good line\nbad \xff byte\n", r"line 2: not valid UTF-8"),
        (b"only one sentence\n", "no document with at least 2"),
    ],
)
def test_unusable_files_are_refused_with_the_file_named(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read_documents(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        read_documents(tmp_path / "nowhere.txt")
