"""DeFormer (Cao et al., ACL 2020): lower layers encode question and passage apart, the passage's cached."""
