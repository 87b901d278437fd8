import sys

from bert_tutor.cli import main

sys.exit(main())
