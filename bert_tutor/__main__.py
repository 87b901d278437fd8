"""``python -m bert_tutor``: the ``bert-tutor`` command. Under torchrun each worker runs it:
``torchrun --standalone --nproc-per-node 2 -m bert_tutor pretrain --output runs/ddp``."""

import os
import sys

from bert_tutor.cli import main

code = main()
if "RANK" in os.environ:  # a torchrun worker whose work is done and whose process group is destroyed:
    # skip Python's clean-up at exit, where gloo's threads now and then abort (std::terminate) a
    # process that has finished, and torchrun would report the finished run as failed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
