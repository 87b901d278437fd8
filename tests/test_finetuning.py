"""bert_tutor.finetuning: generated tasks, your files, label alignment, metrics, the loop, whole tasks."""

import json
from collections import Counter

import pytest
import torch
import transformers

from bert_tutor.bert import (
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from bert_tutor.corpus import ANIMALS, JOBS, NAMES, PLACES, world_documents
from bert_tutor.finetuning import (
    FIT_LABELS,
    FIT_TEST,
    FIT_TRAIN,
    NER_LABELS,
    NER_TEST,
    NER_TRAIN,
    RECIPES,
    WORLD_TASKS,
    accuracy,
    align_labels,
    bio_entities,
    bio_label_names,
    encode_classification,
    encode_ner,
    encode_task,
    entity_scores,
    evaluate_classification,
    evaluate_ner,
    evaluate_task,
    file_task,
    finetune,
    finetuning_model,
    load_pretrained_encoder,
    predict_tags,
    read_classification_tsv,
    read_conll,
    save_finetuned,
    world_fit_task,
    world_ner,
    world_task,
)
from bert_tutor.tokenization import BertTokenizer, train_wordpiece_vocab


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: on a shared 2-core machine, two threads that wait for each other run 5-10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer():
    sentences = [sentence for document in world_documents(300) for sentence in document]
    return BertTokenizer(train_wordpiece_vocab(sentences, 400))  # the course's vocabulary size


def _tiny_config(tokenizer, num_labels):
    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=num_labels,
    )


# --- the world-fit task ---
def _parse_fit(text):
    """(person, thing, cue phrase) of a world-fit text."""
    words = text.split(" . ")[1].removesuffix(" .").split()
    if words[1] == "works":  # "{person} works as a {job} and {cue} every day"
        return words[0], words[4], " ".join(words[6:-2])
    return words[0], words[3], " ".join(words[5:-2])  # "{person} has a {animal} that {cue} at night"


def test_world_fit_task_is_deterministic_per_seed():
    assert world_fit_task(50, seed=1) == world_fit_task(50, seed=1)
    assert world_fit_task(50, seed=1) != world_fit_task(50, seed=2)


def test_world_fit_task_is_balanced_and_its_texts_all_differ():
    examples = world_fit_task(800, seed=0)
    assert len(examples) == 800 and all(b is None for _, b, _ in examples)
    assert Counter(label for *_, label in examples) == {0: 400, 1: 400}
    first = Counter(label for *_, label in examples[:400])
    assert abs(first[0] - first[1]) <= 60  # a random half, so a training set cut from it is near balance
    texts = [text for text, _, _ in examples]
    assert len(set(texts)) == len(texts)  # so a training set and a test set cut from it share no text
    train, test = set(texts[:400]), texts[400:]
    assert not any(text in train for text in test)
    things = Counter(_parse_fit(text)[1] for text in texts)
    assert set(things) == set(JOBS) and min(things.values()) >= 50  # every job, about equally often


@pytest.mark.parametrize("kinds", [("job",), ("job", "animal"), ("animal",)])
def test_world_fit_labels_are_right_by_construction(kinds):
    examples = world_fit_task(300, seed=3, kinds=kinds)
    seen = Counter()
    for text, _, label in examples:
        person, thing, cue = _parse_fit(text)
        assert text.startswith(f"{person} lives in ") and text.split()[3] in PLACES and person in NAMES
        table = JOBS if thing in JOBS else ANIMALS
        assert cue in table.values()  # the cue is always some job's work or some animal's sound
        assert (table[thing] == cue) == (label == 1), text
        seen["job" if table is JOBS else "animal"] += 1
    assert set(seen) == set(kinds) and max(seen.values()) - min(seen.values()) <= 1  # kinds in turn


def test_world_fit_task_refuses_unknown_kinds_and_impossible_sizes():
    with pytest.raises(ValueError, match="kinds must be some of"):
        world_fit_task(10, kinds=("colour",))
    with pytest.raises(ValueError, match="size must be at most"):
        world_fit_task(10**6)
    with pytest.raises(ValueError, match="size must be a positive int"):
        world_fit_task(0)


def test_world_fit_examples_fit_the_course_models_positions(tokenizer):
    data = encode_classification(tokenizer, world_fit_task(400, seed=0, kinds=("job", "animal")), 512)
    assert data["attention_mask"].sum(1).max() <= 32


# --- the NER task ---
def test_world_ner_is_deterministic_and_well_formed():
    sentences = world_ner(200, seed=1)
    assert sentences == world_ner(200, seed=1) and sentences != world_ner(200, seed=2)
    assert len(sentences) == 200
    for words, tags in sentences:
        assert len(words) == len(tags) and all(tag in NER_LABELS for tag in tags)
        for word, tag in zip(words, tags, strict=True):
            if word in JOBS:
                assert tag == "B-JOB"
            if word in ANIMALS:
                assert tag == "B-ANIMAL"
            if word in PLACES:
                assert tag == "B-LOC"
    counts = Counter(tag for _, tags in sentences for tag in tags)
    for tag in ("B-PER", "I-PER", "B-LOC", "B-JOB", "B-ANIMAL"):
        assert counts[tag] >= 20, counts


def test_unseen_ner_split_names_no_person_or_place_of_the_world_or_of_training():
    train_names = {
        w for words, tags in world_ner(500, seed=0) for w, t in zip(words, tags, strict=True) if t != "O"
    }
    for words, tags in world_ner(300, seed=0, unseen_names=True):
        for word, tag in zip(words, tags, strict=True):
            if tag.endswith(("PER", "LOC")):
                assert word not in NAMES and word not in PLACES and word not in train_names


def test_bio_label_names_lists_o_then_b_and_i_of_each_type():
    sentences = [(["a", "b"], ["B-PER", "O"]), (["c"], ["I-LOC"])]
    assert bio_label_names(sentences) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


# --- label alignment and encoding ---
def test_align_labels_keeps_the_first_piece_and_ignores_the_rest():
    assert align_labels([3, 0, 5], [2, 1, 3]) == [3, -100, 0, 5, -100, -100]
    with pytest.raises(ValueError, match="2 word labels for 1 words"):
        align_labels([1, 2], [1])
    with pytest.raises(ValueError, match="at least one piece"):
        align_labels([1], [0])


def test_encode_ner_labels_first_pieces_and_gives_special_tokens_minus_100(tokenizer):
    words = ["loras", "lives", "in", "tamrasstead", "."]
    tags = ["B-PER", "O", "O", "B-LOC", "O"]
    data = encode_ner(tokenizer, [(words, tags), (["."], ["O"])], NER_LABELS)
    counts = [len(tokenizer.tokenize(word)) for word in words]
    assert counts[0] > 1 and counts[3] > 1  # made-up words split into several pieces
    ids = [NER_LABELS.index(tag) for tag in tags]
    expected = [-100, *align_labels(ids, counts), -100]
    assert data["labels"][0].tolist() == expected
    assert data["input_ids"][0, 0] == tokenizer.cls_token_id and data["input_ids"][0, len(expected) - 1] == (
        tokenizer.sep_token_id
    )
    assert data["labels"][1].tolist() == [-100, NER_LABELS.index("O"), -100] + [-100] * (len(expected) - 3)
    assert data["attention_mask"][1].tolist() == [1, 1, 1] + [0] * (len(expected) - 3)  # padding
    for key in ("input_ids", "token_type_ids", "attention_mask", "labels"):
        assert data[key].shape == (2, len(expected)) and data[key].dtype == torch.long


def test_encode_ner_refuses_unknown_tags_and_length_mismatches(tokenizer):
    with pytest.raises(ValueError, match="tag 'B-ORG' is not one of"):
        encode_ner(tokenizer, [(["x"], ["B-ORG"])])
    with pytest.raises(ValueError, match="2 words but 1 tags"):
        encode_ner(tokenizer, [(["x", "y"], ["O"])])


def test_encode_classification_makes_pairs_with_segments_and_labels(tokenizer):
    data = encode_classification(
        tokenizer, [("alba lives in harlow .", "alba is here .", 1)] * 2, max_length=64
    )
    row = data["input_ids"][0].tolist()
    assert row.count(tokenizer.sep_token_id) == 2 and data["labels"].tolist() == [1, 1]
    assert data["token_type_ids"][0].tolist() == [0] * (row.index(tokenizer.sep_token_id) + 1) + [1] * (
        len(row) - row.index(tokenizer.sep_token_id) - 1
    )
    with pytest.raises(ValueError, match="every example has a text_b or none"):
        encode_classification(tokenizer, [("a", "b", 0), ("c", None, 1)])


# --- metrics ---
def test_accuracy_is_the_share_of_correct_predictions():
    assert accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5


@pytest.mark.parametrize(
    ("tags", "entities"),
    [
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
        (["I-PER", "I-PER"], [("PER", 0, 2)]),  # an I- at the start begins an entity
        (["O", "I-LOC", "O"], [("LOC", 1, 2)]),  # ... and after O
        (["B-PER", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 2)]),  # an I- of another type begins its own
        (["B-PER", "B-PER", "I-PER"], [("PER", 0, 1), ("PER", 1, 3)]),  # B- always begins a new one
        (["B-JOB"], [("JOB", 0, 1)]),  # an entity at the very end
        (["O", "O"], []),
        ([], []),
    ],
)
def test_bio_entities_follow_conlleval(tags, entities):
    assert bio_entities(tags) == entities


def test_bio_entities_refuse_tags_that_are_not_bio():
    with pytest.raises(ValueError, match="invalid BIO tag 'X-PER'"):
        bio_entities(["X-PER"])
    with pytest.raises(ValueError, match="invalid BIO tag 'B-'"):
        bio_entities(["B-"])


def test_entity_scores_count_exact_span_and_type_matches_only():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-JOB", "O"]]
    predicted = [["B-PER", "O", "O", "B-LOC"], ["B-JOB", "B-ANIMAL"]]
    # gold: PER(0,2), LOC, JOB = 3; predicted: PER(0,1) wrong span, LOC, JOB, ANIMAL = 4; correct 2
    scores = entity_scores(gold, predicted)
    assert (scores["correct"], scores["predicted"], scores["gold"]) == (2, 4, 3)
    assert scores["precision"] == pytest.approx(2 / 4) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert scores["per_type"]["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 1}
    assert scores["per_type"]["ANIMAL"]["gold"] == 0 and scores["per_type"]["LOC"]["f1"] == 1.0


def test_entity_scores_of_a_wrong_type_or_nothing_predicted_are_zero_not_nan():
    assert entity_scores([["B-PER"]], [["B-LOC"]])["f1"] == 0.0
    nothing = entity_scores([["B-PER", "O"]], [["O", "O"]])
    assert (nothing["precision"], nothing["recall"], nothing["f1"]) == (0.0, 0.0, 0.0)
    assert entity_scores([["O"]], [["O"]])["f1"] == 0.0
    assert entity_scores([["B-PER", "I-PER"]], [["I-PER", "I-PER"]])["f1"] == 1.0  # same entity, IOB1-style


def test_entity_scores_refuse_sequences_of_different_lengths():
    with pytest.raises(ValueError, match="sentence 0: 2 gold tags but 1 predicted"):
        entity_scores([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="1 gold sentences but 2 predicted"):
        entity_scores([["O"]], [["O"], ["O"]])


# --- loaders ---
def _write(tmp_path, text, name="data.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_read_classification_tsv_reads_texts_and_labels_with_or_without_a_header(tmp_path):
    plain = _write(tmp_path, "good film\tpos\nbad film\tneg\n\nfine\tpos\n")
    examples, names = read_classification_tsv(plain)
    assert names == ["neg", "pos"]
    assert examples == [("good film", None, 1), ("bad film", None, 0), ("fine", None, 1)]
    headed = _write(tmp_path, "\ufeffsentence\tlabel\ngood\t1\nbad\t0\nok\t10\n", "h.tsv")
    assert read_classification_tsv(headed) == (
        [("good", None, 1), ("bad", None, 0), ("ok", None, 2)],
        ["0", "1", "10"],
    )
    forced = _write(tmp_path, "text\tclass\nx\ty\n", "f.tsv")
    assert read_classification_tsv(forced, header=True)[0] == [("x", None, 0)]


def test_read_classification_tsv_reads_pairs_and_given_label_names(tmp_path):
    path = _write(tmp_path, "a b\tc d\tfits\ne\tf\tdoes not fit\n")
    examples, names = read_classification_tsv(path, label_names=FIT_LABELS)
    assert examples == [("a b", "c d", 1), ("e", "f", 0)] and names == list(FIT_LABELS)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a\tpos\nb\tc\tneg\n", r"line 2: 3 column\(s\), but the file has 2"),
        ("just text\n", r"line 1: 1 tab-separated column\(s\); expected 2"),
        ("a\tb\tc\td\n", r"line 1: 4 tab-separated"),
        ("a\tpos\n\tneg\n", r"line 2: empty column 1"),
        ("a\tpos\nb\t\n", r"line 2: empty column 2"),
        ("", r"the file is empty"),
        ("\n  \n", r"the file is empty"),
        ("text\tlabel\n", r"no examples"),
        (b"a\tpos\n\xff\tneg\n", r"line 2: not valid UTF-8"),
        (b"a\x00\tpos\n", r"binary file"),
    ],
)
def test_read_classification_tsv_names_the_file_and_line_of_each_error(tmp_path, content, message):
    path = _write(tmp_path, content, "bad.tsv")
    with pytest.raises(ValueError, match=message) as error:
        read_classification_tsv(path)
    assert "bad.tsv" in str(error.value)


def test_read_classification_tsv_refuses_a_label_outside_the_given_names(tmp_path):
    with pytest.raises(ValueError, match=r"line 1: label 'maybe' is not one of"):
        read_classification_tsv(_write(tmp_path, "a\tmaybe\n"), label_names=["no", "yes"])
    with pytest.raises(FileNotFoundError, match="not found"):
        read_classification_tsv(tmp_path / "missing.tsv")


CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

"""


def test_read_conll_reads_words_and_last_column_tags_and_skips_docstart(tmp_path):
    sentences = read_conll(_write(tmp_path, CONLL))
    assert sentences == [
        (["EU", "rejects", "German", "call", "."], ["B-ORG", "O", "B-MISC", "O", "O"]),
        (["Peter", "Blackburn"], ["B-PER", "I-PER"]),
    ]
    assert bio_label_names(sentences) == ["O", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    no_final_blank = _write(tmp_path, "Peter\tB-PER\nsays\tO", "two.conll")
    assert read_conll(no_final_blank) == [(["Peter", "says"], ["B-PER", "O"])]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("EU NNP B-ORG\nrejects O\n", r"line 2: 2 columns, but the file has 3"),
        ("EU\n", r"line 1: a token line needs a word and a tag"),
        ("EU X-ORG\n", r"line 1: invalid BIO tag 'X-ORG'"),
        ("EU B-ORG\n\nPeter PER\n", r"line 3: invalid BIO tag 'PER'"),
        ("", r"the file is empty"),
        ("-DOCSTART- -X- O\n\n", r"no sentences"),
        (b"EU B-ORG\n\xc3( O\n", r"line 2: not valid UTF-8"),
    ],
)
def test_read_conll_names_the_file_and_line_of_each_error(tmp_path, content, message):
    path = _write(tmp_path, content, "bad.conll")
    with pytest.raises(ValueError, match=message) as error:
        read_conll(path)
    assert "bad.conll" in str(error.value)


def test_read_conll_without_a_scheme_accepts_any_tag(tmp_path):
    assert read_conll(_write(tmp_path, "EU ORG\n"), scheme=None) == [(["EU"], ["ORG"])]


# --- the loop ---
def test_finetuning_a_classifier_lowers_the_loss_and_is_deterministic(tokenizer):
    data = encode_classification(tokenizer, world_fit_task(16, seed=0), max_length=64)
    histories, weights = [], []
    for _ in range(2):
        torch.manual_seed(0)
        model = BertForSequenceClassification(_tiny_config(tokenizer, 2))
        histories.append(finetune(model, data, steps=30, batch_size=16, learning_rate=3e-3, seed=0))
        weights.append(model.classifier.weight.detach().clone())
    assert histories[0] == histories[1]
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)
    losses = [record["loss"] for record in histories[0]]
    assert sum(losses[-5:]) / 5 < 0.75 * sum(losses[:5]) / 5  # it learns 16 examples by heart
    assert histories[0][-1]["step"] == 30 and histories[0][0]["learning_rate"] < 3e-3  # warming up
    assert evaluate_classification(model, data)["accuracy"] > 0.9


def test_finetuning_a_tagger_learns_the_world_entities(tokenizer):
    sentences = world_ner(64, seed=0)
    data = encode_ner(tokenizer, sentences)
    torch.manual_seed(0)
    model = BertForTokenClassification(_tiny_config(tokenizer, len(NER_LABELS)))
    history = finetune(model, data, steps=60, batch_size=16, learning_rate=3e-3, seed=0)
    assert history[-1]["loss"] < history[0]["loss"] / 2
    scores = evaluate_ner(model, tokenizer, sentences)
    assert scores["f1"] > 0.5, scores
    tags = predict_tags(model, tokenizer, [["alba", "lives", "in", "harlow", "."]])
    assert len(tags[0]) == 5 and all(tag in NER_LABELS for tag in tags[0])


def test_predict_tags_gives_o_to_words_cut_off_by_max_length(tokenizer):
    model = BertForTokenClassification(_tiny_config(tokenizer, len(NER_LABELS)))
    tags = predict_tags(model, tokenizer, [["dog"] * 10], max_length=5)
    assert len(tags[0]) == 10 and tags[0][3:] == ["O"] * 7


def test_load_pretrained_encoder_copies_the_encoder_but_not_the_heads(tokenizer):
    config = _tiny_config(tokenizer, len(NER_LABELS))
    pretrained = BertForPreTraining(config)
    for model in (BertForTokenClassification(config), BertForSequenceClassification(config)):
        load_pretrained_encoder(model, pretrained)
        for name, value in model.bert.state_dict().items():
            torch.testing.assert_close(value, pretrained.bert.state_dict()[name], rtol=0, atol=0)


def test_finetune_refuses_fewer_examples_than_a_batch(tokenizer):
    data = encode_classification(tokenizer, world_fit_task(4))
    with pytest.raises(ValueError, match="4 examples are fewer than one batch of 8"):
        finetune(BertForSequenceClassification(_tiny_config(tokenizer, 2)), data, steps=1, batch_size=8)


def test_load_pretrained_encoder_takes_a_bert_model_and_keeps_a_fresh_pooler_if_it_has_none(tokenizer):
    config = _tiny_config(tokenizer, 2)
    encoder = BertModel(config, add_pooling_layer=False)
    model = load_pretrained_encoder(BertForSequenceClassification(config), encoder)
    torch.testing.assert_close(
        model.bert.embeddings.word_embeddings.weight,
        encoder.embeddings.word_embeddings.weight,
        rtol=0,
        atol=0,
    )
    assert model.bert.pooler is not None
    other = BertConfig(**{**config.__dict__, "hidden_size": 64})
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_pretrained_encoder(BertForSequenceClassification(other), encoder)


@pytest.mark.parametrize("model_class", [BertForSequenceClassification, BertForTokenClassification])
def test_finetuning_model_copies_the_encoder_or_starts_from_scratch_the_same_for_a_seed(
    tokenizer, model_class
):
    pretrained = BertForPreTraining(_tiny_config(tokenizer, 2))
    tuned = finetuning_model(model_class, pretrained, 5, seed=1)
    scratch = finetuning_model(model_class, pretrained, 5, scratch=True, seed=1)
    weight = "embeddings.word_embeddings.weight"
    assert tuned.config.num_labels == 5 and tuned.classifier.out_features == 5
    torch.testing.assert_close(tuned.bert.state_dict()[weight], pretrained.bert.state_dict()[weight])
    assert not torch.equal(scratch.bert.state_dict()[weight], pretrained.bert.state_dict()[weight])
    again = finetuning_model(model_class, pretrained, 5, scratch=True, seed=1)
    for name, value in scratch.state_dict().items():
        torch.testing.assert_close(value, again.state_dict()[name], rtol=0, atol=0)
    torch.testing.assert_close(
        tuned.classifier.weight, scratch.classifier.weight
    )  # the same seed, the same head


def test_world_tasks_are_chapter_8s_splits():
    fit, ner = world_task("world-fit"), world_task("world-ner")
    assert (fit.kind, len(fit.train), len(fit.test), fit.label_names) == (
        "classification",
        FIT_TRAIN,
        FIT_TEST,
        FIT_LABELS,
    )
    assert not {text for text, _, _ in fit.train} & {text for text, _, _ in fit.test}
    assert (ner.kind, len(ner.train), len(ner.test), ner.label_names) == (
        "ner",
        NER_TRAIN,
        NER_TEST,
        NER_LABELS,
    )
    assert fit.model_class is BertForSequenceClassification and ner.model_class is BertForTokenClassification
    assert ner.texts()[0] == " ".join(ner.train[0][0]) and fit.texts()[0] == fit.train[0][0]
    assert set(RECIPES) == set(WORLD_TASKS)
    with pytest.raises(ValueError, match="unknown world task 'world-qa'"):
        world_task("world-qa")


def test_file_task_reads_tsv_and_conll_and_holds_out_a_tenth(tmp_path):
    rows = "".join(f"text {i}\t{'pos' if i % 2 else 'neg'}\n" for i in range(30))
    tsv = _write(tmp_path, rows, "reviews.tsv")
    task = file_task(tsv)
    assert (task.name, task.kind, task.label_names) == ("reviews.tsv", "classification", ("neg", "pos"))
    assert (len(task.train), len(task.test)) == (27, 3) and task == file_task(tsv)  # the same tenth each time
    assert sorted(task.train + task.test) == sorted(read_classification_tsv(tsv)[0])
    evaluation = _write(tmp_path, "new text\tpos\n", "test.txt")
    assert file_task(tsv, evaluation).test == [("new text", None, 1)]
    conll = _write(tmp_path, CONLL, "news.iob")
    ner = file_task(conll, conll)
    assert (
        ner.kind == "ner"
        and ner.train == ner.test == read_conll(conll)
        and ner.texts()[1] == "Peter Blackburn"
    )
    assert ner.label_names == ("O", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER")
    assert file_task(_write(tmp_path, CONLL, "news.txt"), file_format="conll").kind == "ner"


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"),
    [
        ("data.txt", "a\tb\n", {}, "cannot tell the format from the suffix"),
        ("data.tsv", "a\tb\n", {"file_format": "csv"}, "file_format must be 'tsv' or 'conll'"),
        ("data.tsv", "a\tb\n", {}, "holding out a test set needs at least 2"),
    ],
)
def test_file_task_refuses_what_it_cannot_read_or_split(tmp_path, name, content, kwargs, message):
    with pytest.raises(ValueError, match=message):
        file_task(_write(tmp_path, content, name), **kwargs)


def test_encode_and_evaluate_task_dispatch_on_the_kind(tokenizer):
    for task in (world_task("world-fit"), world_task("world-ner")):
        data = encode_task(task, tokenizer, task.train[:8], 64)
        assert data["labels"].dim() == (1 if task.kind == "classification" else 2)
        model = task.model_class(_tiny_config(tokenizer, len(task.label_names)))
        metrics = evaluate_task(task, model, tokenizer, task.test[:8], 64)
        assert set(metrics) >= (
            {"accuracy"} if task.kind == "classification" else {"f1", "precision", "recall"}
        )


def test_save_finetuned_writes_label_names_and_metrics_that_transformers_reads(tokenizer, tmp_path):
    model = BertForTokenClassification(_tiny_config(tokenizer, len(NER_LABELS))).eval()
    report = {"task": "world-ner", "metrics": {"f1": 0.5}}
    directory = save_finetuned(model, tokenizer, tmp_path / "tagger", NER_LABELS, report)
    assert json.loads((directory / "metrics.json").read_text()) == report
    theirs = transformers.AutoModelForTokenClassification.from_pretrained(directory).eval()
    assert theirs.config.id2label == dict(enumerate(NER_LABELS))
    assert theirs.config.label2id == {name: i for i, name in enumerate(NER_LABELS)}
    ours = BertForTokenClassification.from_pretrained(directory)
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, theirs(ids).logits, atol=1e-5, rtol=1e-5)
    assert transformers.BertTokenizer.from_pretrained(directory).vocab == tokenizer.vocab
    with pytest.raises(ValueError, match="2 label names for a model with 9 labels"):
        save_finetuned(model, tokenizer, tmp_path / "other", ["a", "b"], report)
