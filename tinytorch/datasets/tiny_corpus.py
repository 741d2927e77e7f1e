"""A tiny English text corpus (about 6 KB) for tokenizers, with a few lines in other scripts.

Written for TinyTorch by its authors and dedicated to the public domain (CC0 1.0): copy, change
and redistribute it freely. Source and purpose: README.md in this folder. Paragraphs are
separated by blank lines; the last section repeats one sentence in ten languages and ends with
three emoji, so byte-level tokenizers meet multi-byte UTF-8 characters.
"""

TINY_CORPUS = """\
On Building Small Things

A workshop is a quiet place in the morning. The tools hang on the wall in the order they were last used, and the bench still holds yesterday's unfinished work. The first hour is for looking: what was I building, why did it stop working, and what is the smallest next step?

Most things worth building are built from smaller things. A table is legs, a top and the joints between them. A program is functions, and each function is a handful of lines. A neural network is a stack of layers, each layer a matrix multiplication followed by a simple function applied to every number. None of the parts is hard to understand on its own. The difficulty lives in the joints, where one part hands its work to the next.

The apprentice asks why we do not simply buy the finished table. The answer is that buying teaches you nothing about tables. When you build one yourself, you learn where the weight goes, why the joints loosen in a dry winter, and which shortcuts you will regret. The next time you sit at a table, you see it differently. You see the decisions.

Reading and Writing

Before a machine can read a sentence, the sentence must become numbers. Letters become numbers, words become numbers, and the numbers become rows of a large table that the machine learns to fill. Choosing how to cut text into pieces is the first decision, and it quietly shapes every decision that follows.

Cut the text into letters, and the pieces are few but the sequences are long. Cut it into whole words, and the sequences are short but the table of pieces grows without end, because people keep inventing words, names and misspellings. Between the two lies a middle road: start from letters, and glue together the pairs that appear most often, again and again, until the table of pieces is as large as you can afford.

The gluing is a kind of bookkeeping. Count every pair of neighbours. Find the most common pair. Give it a new name. Replace it everywhere. Count again. After a few hundred rounds, common words are single pieces, common endings such as "ing" and "tion" are pieces, and rare words are spelled out from smaller pieces that the machine already knows.

The Weather at Sea

The old sailor kept a log of the weather for forty years. Every morning he wrote the wind, the clouds and the height of the waves. Every evening he wrote whether the morning had told the truth. The log was not beautiful, but it was honest, and in the end it was worth more than any chart he owned.

"The sea does not care what you expected," he liked to say. "It only cares what you measured."

He measured the wind with a flag and a watch. He measured the waves against the mast. He measured the clouds by how quickly they crossed the moon. When younger sailors brought him new instruments, he tried them, compared them with his log, and kept the ones that agreed with the sea.

A Few Rules for Measuring

Measure before you guess, and guess before you measure again. Run the same experiment more than once; the first run is often the slowest. Write down the size of the input next to the time it took, because a number without its size means nothing. Compare against something simple, because a fast answer to the wrong question is still wrong. Keep the log honest, even when it disagrees with you.

When a program is slow, the cause is usually one of three things: it does too much work, it moves too much memory, or it waits for something else. Measuring tells you which one. Guessing tells you what you hoped.

Counting Sheep

One sheep, two sheep, three sheep, four. Five sheep, six sheep, seven sheep, more. The farmer counts the sheep through the gate in the evening and again in the morning, and the two numbers should agree. When they do not, someone goes out into the dark with a lamp.

Counting is the oldest kind of computing. The shepherd with a pile of pebbles, one pebble for each sheep, was running a program: take a pebble for each sheep that leaves, give back a pebble for each sheep that returns, and worry if any pebble is left over.

Small Numbers, Large Tables

A table with fifty thousand rows and seven hundred and sixty-eight columns holds almost forty million numbers. Stored as four bytes each, that is more than one hundred and fifty million bytes, before the machine has learned anything at all. Make the rows longer or the table larger and the memory grows with them. Every piece of text the machine has ever seen must find its row in that table.

Shorter sequences are cheaper to read, and a larger table makes sequences shorter. A smaller table is cheaper to store, and it makes sequences longer. There is no free choice here, only a trade that each builder must weigh for their own machine, their own languages and their own budget.

Many Languages

The same idea, written in other languages and scripts:
Le modèle lit le texte petit à petit.
Das Modell liest den Text Stück für Stück.
El modelo lee el texto poco a poco.
Il modello legge il testo poco a poco.
Η μηχανή διαβάζει το κείμενο λίγο λίγο.
Машина читает текст понемногу.
機械は文章を少しずつ読みます。
机器一点一点地阅读文本。
मशीन धीरे-धीरे पाठ पढ़ती है।
The model reads text one piece at a time. 🙂 📚 ✨

Closing the Workshop

In the evening the tools go back on the wall, the shavings are swept into a pile, and the bench is cleared for tomorrow. The unfinished work waits. It will still be there in the morning, a little less mysterious than it was today.
"""


def load_tiny_corpus():
    """The corpus as one `str` (paragraphs separated by blank lines, ends with a newline)."""
    return TINY_CORPUS


def paragraphs():
    """The corpus split at blank lines: a list of paragraphs (headings are paragraphs too)."""
    return [p for p in TINY_CORPUS.split("\n\n") if p.strip()]
