"""A small built-in list of common English words for the spelling tasks (no download).

415 lowercase words of 3 to 10 letters, written out here so the tasks run
offline and the same everywhere. `count` asks how many times a letter occurs
in one; `reverse` asks for one backwards.
"""

WORDS = tuple("""
able about above accept across action actor add address admit adult afraid after again against age agent agree
ahead air airport alarm album alive allow almost alone along already also always amount angle angry animal
answer apple april area argue arm army around arrive art article artist ask asleep attack aunt autumn avoid
award baby back bad bag bake ball banana band bank base basket bath beach bean bear beautiful because bed
beef before begin behind believe bell belt bench best better bicycle bird birthday biscuit black blanket blue
boat body bone book border bottle bottom bowl box brain branch bread break bridge bright bring brother brown
brush bubble bucket build burn butter button cabbage cake calendar camera candle captain card care carpet
carrot castle cat ceiling center chair chalk cheese cherry chicken child chimney circle city class clean
clock cloud coast coffee cold collar colour comb corner cotton cough country cousin cover cow crayon cream
crowd crown cup curtain cushion dance danger daughter day desert desk diamond dinner doctor dog doll dolphin
door dragon drawer dream dress drink driver drum duck dust eagle earth egg elbow elephant engine evening
eye face family farmer feather fence field finger fire fish flag flower forest fork fountain fox friend frog
fruit garden garlic gate ghost giant giraffe glass glove goat gold grape grass guitar hair hammer hand harbor
hat heart helmet hill holiday honey horse hospital house island jacket jelly jewel journey juice jungle
kettle key king kitchen kite knee knife ladder lake lamp leaf lemon letter library light lion lizard lock
machine magnet mango map market meadow medal melon metal milk mirror monkey moon morning mountain mouse mouth
museum music nail needle nest night noodle notebook number ocean office onion orange owl paint palace panda
paper parrot party pasta peach pencil pepper piano picture pillow pilot pirate planet plate pocket poem
potato pumpkin puzzle queen rabbit radio rain rainbow river road robot rocket roof room rope rose ruler
sailor salad salt sand school scissors sea season shadow sheep shell ship shirt shoe shop silver singer
sister skirt sky snake snow soap sock sofa soldier soup spider spoon spring square squirrel stairs star
station stone storm strawberry street sugar summer sun sweater table tail teacher teapot tent theatre
thunder ticket tiger toast tomato tooth towel tower town toy train tree truck turtle umbrella uncle valley
vase vegetable village violin volcano wagon wall wallet water wave weather whale wheel window winter wizard
wolf woman wood world yellow zebra
""".split())
