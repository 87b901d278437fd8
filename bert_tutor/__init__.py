"""bert_tutor: the package behind the bert-tutor course, one module per idea.

Read the modules in the order the course meets them: ``attention`` (chapters 1-2),
``toy_translation`` and ``seq2seq`` (chapter 1), ``viz`` (plots), ``exercises`` (checks)
and ``workbooks`` (the exercise copies of the chapters).
"""

__version__ = "0.1.0"
