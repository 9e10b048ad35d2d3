"""aelab: autoencoders you can see. The core behind the Streamlit app and `python -m aelab`."""

__version__ = "0.1.0"
