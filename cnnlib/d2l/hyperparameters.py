"""d2l-en's two small tools for writing classes: ``HyperParameters.save_hyperparameters`` and ``add_to_class``."""
import inspect


class HyperParameters:
    """A base class whose ``__init__`` can keep its arguments as attributes with one call."""

    def save_hyperparameters(self, ignore=()):
        """Store the arguments of the calling ``__init__`` (every local variable at the time of the call, except
        ``self``, names starting with ``_`` and those in ``ignore``) as attributes and in ``self.hparams``.

        ``def __init__(self, lr=0.1, num_classes=10): self.save_hyperparameters()`` sets ``self.lr`` and
        ``self.num_classes``.
        """
        caller = inspect.currentframe().f_back
        skip = set(ignore) | {"self"}
        self.hparams = {name: value for name, value in caller.f_locals.items()
                        if name not in skip and not name.startswith("_")}
        for name, value in self.hparams.items():
            setattr(self, name, value)


def add_to_class(Class):
    """Decorator that adds the decorated function to ``Class`` as a method (also to classes already defined).

    ``@add_to_class(LeNet)`` over ``def layer_summary(self, X_shape): ...`` gives every ``LeNet`` that method,
    instances created before included. Returns the function unchanged.
    """
    if not inspect.isclass(Class):
        raise TypeError(f"add_to_class needs a class, e.g. @d2l.add_to_class(d2l.Classifier); "
                        f"got {type(Class).__name__}")

    def add(function):
        setattr(Class, function.__name__, function)
        return function

    return add
