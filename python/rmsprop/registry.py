"""Which classes a config or a checkpoint may name: class name -> class.

The engine's serialisable classes (the optimizers and the learning rate
schedules) register themselves with `@register("optimizer")` or
`@register("schedule")`. Deserialising looks a class name up here, or in the
`custom_objects` the caller passes (as in Keras' `from_config(config,
custom_objects=...)`), and nowhere else: a config never makes us import a
module or reach a class that the caller did not hand over, so loading a file
cannot run code from it.

This module imports nothing from the package, so every other module can use
it (it also replaces the import cycle between `checkpoint` and `loss_scale`).
"""

from typing import Callable, Dict, Mapping, Optional, Tuple, Type, TypeVar

KINDS = ("optimizer", "schedule")
_REGISTRY: Dict[str, Dict[str, type]] = {kind: {} for kind in KINDS}

T = TypeVar("T", bound=type)


def register(kind: str) -> Callable[[T], T]:
    """Class decorator: make the class loadable by its `__name__` as a `kind`."""
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {', '.join(KINDS)}; got {kind!r}.")

    def decorator(cls: T) -> T:
        taken = _REGISTRY[kind].get(cls.__name__)
        if taken is not None and taken is not cls:
            raise ValueError(f"Another {kind} class is already registered as "
                             f"{cls.__name__!r}: {taken!r}.")
        _REGISTRY[kind][cls.__name__] = cls
        return cls

    return decorator


def registered(kind: str) -> Tuple[str, ...]:
    """The names registered for `kind`, in registration order."""
    return tuple(_REGISTRY[kind])


def get(kind: str, class_name: str) -> Optional[type]:
    """The class registered as `class_name` for `kind`, or None."""
    return _REGISTRY[kind].get(class_name)


def check_custom_objects(custom_objects: Optional[Mapping]) -> Dict[str, object]:
    """`custom_objects` as a plain dict, after checking it is a name -> object mapping."""
    if custom_objects is None:
        return {}
    if not isinstance(custom_objects, Mapping):
        raise TypeError("`custom_objects` must be a dict mapping class names to classes; got "
                        f"{type(custom_objects).__name__}.")
    for key in custom_objects:
        if not isinstance(key, str):
            raise TypeError(f"`custom_objects` keys must be class names (strings); got {key!r}.")
    return dict(custom_objects)


def lookup(kind: str, class_name: object, base: Tuple[type, ...],
           custom_objects: Optional[Mapping] = None) -> Type:
    """The class called `class_name`: from `custom_objects` first (as Keras does),
    then from the registered `kind` classes. It must be a subclass of `base`.

    Raises ValueError for an unknown name and TypeError for a custom object of
    the wrong kind; the config's module, if any, is never imported.
    """
    custom = check_custom_objects(custom_objects)
    if not isinstance(class_name, str):
        raise ValueError(f"The {kind}'s class_name must be a string; got {class_name!r}.")
    if class_name in custom:
        cls = custom[class_name]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            expected = " or ".join(b.__name__ for b in base)
            raise TypeError(f"custom_objects[{class_name!r}] must be a subclass of {expected}; "
                            f"got {cls!r}.")
        return cls
    cls = _REGISTRY[kind].get(class_name)
    if cls is None or not issubclass(cls, base):
        known = ", ".join(_REGISTRY[kind])
        raise ValueError(f"Unknown {kind} class {class_name!r}: expected one of {known}, or a "
                         f"class passed in `custom_objects` (e.g. custom_objects="
                         f"{{{class_name!r}: {class_name}}}).")
    return cls
