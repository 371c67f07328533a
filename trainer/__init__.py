"""st-finetune's core: sentence-transformers fine-tuning as orchestrator-neutral stages.

Importing it keeps library progress bars out of the logs (`trainer.logs.libraries`;
`ST_FINETUNE_PROGRESS_BARS=1` keeps them): every step and task imports it first.
"""

from trainer.logs import quiet_libraries

quiet_libraries()
