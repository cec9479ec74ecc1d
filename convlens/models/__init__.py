"""The model zoo and networks written as data.

    from convlens import models
    net = models.get_model("lenet5")                       # or models.lenet5(activation="tanh")
    models.default_recipe("lenet5")                        # how `convlens train` trains it
    net = models.from_spec("examples/specs/lenet5.toml")   # any net as a TOML/JSON layer list
    models.save_spec(models.to_spec(net, (1, 28, 28)), "net.json")
"""

from convlens.models.graph import GraphModule
from convlens.models.graph_spec import from_graph_spec, is_graph_spec
from convlens.models.spec import LAYER_TYPES, SpecError, from_spec, load_spec, plan_spec, save_spec, to_spec
from convlens.models.zoo import (
    cifar_bn,
    convnetjs_cifar10,
    default_input_shape,
    default_recipe,
    describe_model,
    get_model,
    lenet5,
    list_models,
    mlp,
    resnet20,
    tiny_vgg,
)

__all__ = [
    "lenet5", "convnetjs_cifar10", "tiny_vgg", "mlp", "cifar_bn", "get_model", "list_models", "describe_model",
    "default_input_shape", "default_recipe", "from_spec", "to_spec", "load_spec", "save_spec", "plan_spec",
    "SpecError", "LAYER_TYPES",
]
__all__ += ["resnet20", "GraphModule", "from_graph_spec", "is_graph_spec"]

# airbench-style fast-training nets (docs/recipes.md)
from convlens.models.airbench import PatchWhitening, airbench, airbench93, airbench94  # noqa: E402

__all__ += ["airbench", "airbench94", "airbench93", "PatchWhitening"]
