"""Shared logic of the platform: configuration, images, ResNet50 features, datasets, MLflow.

Import the module that holds a name (``from fsdl_lib.images import load_image``): importing the
package itself loads nothing, so DAG files that only need names stay cheap to parse.
"""

__version__ = "0.1.0"
