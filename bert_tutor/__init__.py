"""bert_tutor: the package behind the bert-tutor course, one module per idea.

Read the modules in the order the course meets them:

* ``attention`` (chapters 1-3): masked softmax, additive, scaled dot-product, multi-head attention
* ``toy_translation``, ``seq2seq`` (chapter 1): a made-up language pair, an RNN encoder-decoder
* ``transformer`` (chapter 4): positions, feed-forward, post/pre-LN layers, the encoder-decoder
* ``tokenization`` (chapter 5): BERT's basic tokenizer, WordPiece, a vocabulary trainer
* ``bert``, ``hf`` (chapter 6): the BERT model and heads; Hugging Face's files, both directions
* ``corpus``, ``pretraining``, ``training`` (chapter 7): text, NSP pairs and masking, the loop
* ``finetuning`` (chapter 8): classification and NER data, label alignment, metrics

Beside them: ``viz`` (plots), ``exercises`` (checks), ``workbooks`` (exercise copies of the
chapters), ``reproducibility`` (seeds and threads), ``files`` (atomic writes) and ``cli``
(the ``bert-tutor`` command).
"""

__version__ = "0.1.0"
