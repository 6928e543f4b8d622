"""NumPy recurrent neural network language model shared by training and serving."""
