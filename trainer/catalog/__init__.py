"""What the installed sentence-transformers and transformers accept, known without
importing them: losses and the rows each trains on, loss parameters, training-argument
names, types and ranges. The bottom layer: it imports nothing else of the project but
`trainer.problems`.
"""

from trainer.catalog.arguments import coerce_yaml_numbers, training_value_problems
from trainer.catalog.facts import (
    DISTANCE_ENUMS,
    LibraryFacts,
    ParameterFacts,
    cache_path,
    library_facts,
    read_facts,
    type_name,
)
from trainer.catalog.losses import (
    CACHED_VARIANTS,
    LABEL_COLUMNS,
    LOSS_SPECS,
    TeacherTarget,
    distance_metric_name,
    guided_losses,
    loss_param_problems,
    similarity_function_name,
    teacher_losses,
)

__all__ = [
    "CACHED_VARIANTS",
    "DISTANCE_ENUMS",
    "LABEL_COLUMNS",
    "LOSS_SPECS",
    "LibraryFacts",
    "ParameterFacts",
    "TeacherTarget",
    "cache_path",
    "coerce_yaml_numbers",
    "distance_metric_name",
    "guided_losses",
    "library_facts",
    "loss_param_problems",
    "read_facts",
    "similarity_function_name",
    "teacher_losses",
    "training_value_problems",
    "type_name",
]
