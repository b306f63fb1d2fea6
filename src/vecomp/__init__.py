"""vecomp: do different vision encoders hold complementary information for V+L tasks?"""

__version__ = "0.1.0"
